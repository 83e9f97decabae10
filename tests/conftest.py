"""The test tiers (README, "Tests").

  unit  pure functions against known values, no subprocess and no training run: `-m unit`
  slow  end-to-end runs of minutes: skipped by `-m "not slow"`
  the rest, with unit, is the fast tier.

tests/ is a package, so pytest puts the repository root on sys.path (its default 'prepend'
import mode): tests import configs/ and each other as `from tests import helpers`.
"""
import pytest

# The modules whose every test is a unit test (together under 2 minutes on one core).
UNIT_MODULES = frozenset({
    'test_camera', 'test_config', 'test_empirical', 'test_encoding', 'test_field', 'test_prompts',
    'test_render', 'test_schedules', 'test_sds', 'test_texture', 'test_turntable',
})


def pytest_collection_modifyitems(items):
  for item in items:
    if item.module.__name__.rsplit('.', 1)[-1] in UNIT_MODULES:
      item.add_marker(pytest.mark.unit)

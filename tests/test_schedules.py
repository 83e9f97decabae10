"""Schedules: the paper's values at the key steps, and independence from num_steps."""
import numpy as np
import pytest

from dreamfusion_jax import defaults, schedules


@pytest.fixture
def config():
  return defaults.get_config()


def test_lambda_sigma_and_orientation(config):
  assert schedules.lambda_sigma(0, config) == pytest.approx(5e-2)
  assert schedules.lambda_sigma(2500, config) == pytest.approx(0.5 * (5e-2 + 2e-3))
  assert schedules.lambda_sigma(5000, config) == pytest.approx(2e-3)
  assert schedules.lambda_sigma(12000, config) == pytest.approx(2e-3)
  assert schedules.orientation_weight(0, config) == pytest.approx(1e-4)
  assert schedules.orientation_weight(5000, config) == pytest.approx(1e-2)
  config.schedule.orientation_interp = 'log'
  assert schedules.orientation_weight(2500, config) == pytest.approx(1e-3)


def test_learning_rate(config):
  lr = schedules.learning_rate(config)
  assert lr(0) == pytest.approx(1e-9)
  assert lr(1500) == pytest.approx(0.5 * (1e-9 + 1e-4))
  assert lr(3000) == pytest.approx(1e-4)
  mid = 3000 + 6000
  assert lr(mid) == pytest.approx(1e-6 + 0.5 * (1e-4 - 1e-6), rel=1e-4)
  assert lr(15000) == pytest.approx(1e-6)
  assert lr(40000) == pytest.approx(1e-6)


def test_schedules_ignore_num_steps(config):
  short = {s: (float(schedules.learning_rate(config)(s)), float(schedules.lambda_sigma(s, config)))
           for s in (0, 100, 4000, 14000)}
  config.num_steps = 100_000
  long = {s: (float(schedules.learning_rate(config)(s)), float(schedules.lambda_sigma(s, config)))
          for s in short}
  assert short == long


def test_shading_mix_and_ablations(config):
  np.testing.assert_allclose(schedules.shading_probs(999, config), [1, 0, 0])
  np.testing.assert_allclose(schedules.shading_probs(1000, config), [0.25, 0.375, 0.375])
  config.ablation.textureless = False
  np.testing.assert_allclose(schedules.shading_probs(5000, config), [0.25, 0.75, 0])
  config.ablation.shading = False
  np.testing.assert_allclose(schedules.shading_probs(5000, config), [1, 0, 0])

"""The toy world end to end (slow): the offline default meets its targets on the hamburger and on
the library's hardest object.

Two runs of the README's first command, side by side on the two cores: configs/toy.py as shipped,
and the same with the prompt of the library object benchmarks/library.py measured worst
(WORST_OBJECT). Both read one prior (it covers every library object), built first in a fresh
cache directory with both cores, as the first run on a fresh machine builds it. Every assertion
reads the runs' metrics.json: scores of the albedo renders at the held-out cameras against the
true object (dreamfusion_jax/toy/). The paper's view-prompt ablation is asserted by
tests/test_janus_direction.py, on the runs of the Janus benchmark (a third 800-step run here cost
5 of the slow tier's 30 minutes).
"""
import json
import os
import subprocess

import pytest

from configs import toy as toy_config
from dreamfusion_jax import toy
from tests import helpers

pytestmark = pytest.mark.slow

PSNR_TARGET = 25.0  # Mean held-out whole-image PSNR of the default run (dB).
IOU_TARGET = 0.9  # Mean held-out silhouette IoU of the default run.
# The library object with the lowest IoU in benchmarks/library.py's 2 seeds (0.920 and 0.913;
# docs/verification.md, "Across the library"): white on the white evaluation background.
WORST_OBJECT = 'snowman'
RUNS = {'discrete': {}, 'worst': {'prompt': WORST_OBJECT}}  # Overrides of configs/toy.py.


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """{run: metrics.json} of the default run and of the worst object."""
  base = tmp_path_factory.mktemp('toy_world')
  overrides = {name: {**o, 'toy.cache_dir': str(base / 'cache')} for name, o in RUNS.items()}
  configs = {name: toy_config.get_config() for name in RUNS}
  for name, config in configs.items():
    config.update_from_flattened_dict(overrides[name])
  assert len({toy.dataset_path(c) for c in configs.values()}) == 1  # One prior for both.
  toy.build_dataset(configs['discrete'])
  # One thread each: the two runs share the machine's two cores.
  env = dict(os.environ, XLA_FLAGS='--xla_cpu_multi_thread_eigen=false')
  procs = {}
  for name in RUNS:
    procs[name] = helpers.launch_train(*(f'--config.{k}={v}' for k, v in overrides[name].items()),
                                       workdir=base / name, env=env, stderr=subprocess.STDOUT)
  metrics = {}
  for name, proc in procs.items():
    output, _ = proc.communicate()
    assert proc.returncode == 0, output[-3000:]
    with open(base / name / 'metrics.json') as f:
      metrics[name] = json.load(f)
  return metrics


def test_default_run_meets_the_targets(runs):
  m = runs['discrete']
  assert m['psnr'] >= PSNR_TARGET, m['views']
  assert m['iou'] >= IOU_TARGET, m['views']
  # The headline (toy.HEADLINE: scores an empty or collapsed field cannot pass) is met at the
  # end and failed at step 0, so the score is the training's.
  assert m['headline_failures'] == [], m['views']
  assert m['initial_headline_failures'] != []
  # The gain over the fresh NeRF (the same cameras at step 0).
  assert m['psnr'] - m['initial_psnr'] > 10.0
  assert m['skipped_steps'] == 0


def test_view_prompts_put_the_mark_in_front_only(runs):
  """With the paper's view words the ketchup mark is painted on the front and not the back."""
  m = runs['discrete']
  assert m['mark_front'] >= toy.MARK_PRESENT, m['views']
  assert m['mark_back'] < toy.MARK_PRESENT, m['views']


def test_the_worst_library_object_is_rebuilt(runs):
  """The default holds on the object it does worst (issue 24's goal: every object IoU >= 0.85)."""
  m = runs['worst']
  assert m['iou'] >= toy.HEADLINE['iou'], m['views']
  # Rebuilt by the training, not by the initial blob (the snowman's step 0: IoU 0.64).
  assert m['iou'] > m['initial_iou'] + 0.15

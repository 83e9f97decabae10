"""The paper's textureless ablation in miniature (slow): textureless renders improve the silhouette.

benchmarks/ablations.py measured it at its reduced size (docs/verification.md): with shading on,
turning textureless renders on raised the held-out silhouette IoU in every one of its 3 seeds x 3
view modes (by 0.008 to 0.082; on the default before issue 24 too, by 0.015 to 0.10). The normal
error has no direction that holds across seeds (it fell in some pairs and rose in others), so it
is not asserted. This test reruns the benchmark's discrete pair at seed 0, exactly as the
benchmark runs it: one single-threaded worker per run, the two runs side by side (measured: IoU
0.719 on, 0.651 off, the benchmark's rows bit for bit).
"""
import json

import pytest

from benchmarks import ablations
from dreamfusion_jax.toy import sweep as toy_sweep
from dreamfusion_jax import toy

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """{textureless on/off: final metrics} of the benchmark's discrete, shading-on pair, seed 0."""
  setting = {'prompts.view_mode': 'discrete', 'ablation.shading': True, 'seed': 0,
             'toy.cache_dir': str(tmp_path_factory.mktemp('prior'))}
  config = toy_sweep.toy_config()
  config.update_from_flattened_dict(toy_sweep.scaled(ablations.SIZE, setting))
  toy.build_dataset(config)  # The prior's images, once for both runs.
  procs = {on: toy_sweep.launch(toy_sweep.scaled(ablations.SIZE,
                                                 {**setting, 'ablation.textureless': on}))
           for on in (True, False)}
  metrics = {}
  for on, proc in procs.items():
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    metrics[on] = json.loads(stdout.strip().splitlines()[-1])
  return metrics


def test_textureless_renders_improve_the_silhouette(runs):
  on, off = runs[True], runs[False]
  assert on['iou'] > off['iou'], (on['iou'], off['iou'])
  # Both runs trained (the step-0 density blob has IoU 0.52; they end 0.20 and 0.13 above it),
  # so the comparison is of two objects, not of the blob twice.
  assert min(on['iou'], off['iou']) > on['initial_iou'] + 0.1

"""Janus in the toy world (slow): the one Janus direction benchmarks/janus.py shows in all 3 seeds.

The benchmark (docs/verification.md) trains the onion hamburger with each guidance. With the
paper's discrete view words and no negatives, no seed paints the ketchup where the true object
has none; with Perp-Neg at threestudio's weights (the config's prompts.neg_* defaults), every seed
does, and loses several dB. The patches are the exact prior's over-extrapolation (the benchmark's
--study=denoise shows it in one step), not a learned second face: these weights are sized for
Stable Diffusion, whose view scores differ little, not for a prior that tells the views apart
exactly. No direction about fine view words held in all 3 seeds, so none is asserted.

This test reruns that pair at seed 0 and caption noise 0 through the benchmark's own sweep (the
prior built once, then one single-threaded worker per run, side by side), and the two runs serve
every assertion. It runs at STEPS, the fewest of those measured (300, 400, 500 and 800, each at
seeds 0, 1, 2 but 300 at seed 0 only) at which the direction held in every seed: at 400 the plain
runs scored 22.9-23.5 dB with ketchup in at most one front view (by 800 every seed paints the
front's), the Perp-Neg runs 15.2-15.7 dB with ketchup-coloured patches in 7 to 10 of the 10 views;
at 300 neither run of seed 0 showed any.
"""
import pytest

from benchmarks import janus
from dreamfusion_jax.toy import sweep as toy_sweep

pytestmark = pytest.mark.slow

STEPS = 400  # The benchmark's SIZE otherwise (16 + 8 samples, no orientation loss).


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """{negatives: janus.score row} of the discrete pair without negatives and with Perp-Neg."""
  tmp = tmp_path_factory.mktemp('janus')
  sweep = []
  for negatives in ('none', 'perp_neg'):
    setting = {'prompts.view_mode': 'discrete', 'prompts.negatives': negatives,
               'toy.caption_noise': 0.0}
    sweep.append(('janus', setting, {**setting, 'seed': 0, 'toy.cache_dir': str(tmp / 'prior')}))
  rows = toy_sweep.run_all(sweep, 2, str(tmp / 'rows.jsonl'), dict(janus.SIZE, num_steps=STEPS),
                           janus.score)
  assert len(rows) == 2, 'a run failed (its stderr is printed above)'
  return {r['setting']['prompts.negatives']: r for r in rows}


def marks(row):
  """The ketchup's fraction of each held-out view, for the failure messages."""
  return [round(v['mark'], 3) for v in row['views']]


def test_plain_guidance_paints_no_ketchup_where_the_truth_has_none(runs):
  # (Whether it paints the front's yet depends on the seed at this length: 1 seed of 3 at 500.)
  assert not runs['none']['janus'], marks(runs['none'])


def test_perp_neg_at_threestudio_weights_paints_it_where_the_truth_has_none(runs):
  plain, perp_neg = runs['none'], runs['perp_neg']
  assert perp_neg['janus'], marks(perp_neg)
  # ... and the object is worse for it: the patches are not a side effect of a better fit.
  assert perp_neg['psnr'] < plain['psnr'] - 3.0, (perp_neg['psnr'], plain['psnr'])

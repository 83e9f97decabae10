"""Janus in the toy world (slow): the one Janus direction benchmarks/janus.py shows in all 3 seeds,
and the paper's view-prompt ablation in miniature.

The benchmark (docs/verification.md) trains the onion hamburger with each guidance. With the
paper's discrete view words and no negatives, no seed paints the ketchup where the true object
has none; with Perp-Neg at threestudio's weights (the config's prompts.neg_* defaults), every seed
does, and loses several dB. The patches are the exact prior's over-extrapolation (the benchmark's
--study=denoise shows it in one step), not a learned second face: these weights are sized for
Stable Diffusion, whose view scores differ little, not for a prior that tells the views apart
exactly. No direction about fine view words held in all 3 seeds, so none is asserted.

This test reruns that pair at seed 0 and caption noise 0 through the benchmark's own sweep (the
prior built once, then one single-threaded worker per run, two at a time), with a third run
without view words (view_mode=none), and the three runs serve every assertion. It runs at STEPS,
the fewest of those measured (300, 400, 500 and 800, each at seeds 0, 1, 2 but 300 at seed 0
only) at which the direction held in every seed: at 400 the plain runs scored 22.9-23.5 dB with
ketchup in at most one front view (by 800 every seed paints the front's), the Perp-Neg runs
15.2-15.7 dB with ketchup-coloured patches in 7 to 10 of the 10 views; at 300 neither run of seed
0 showed any. Without view words the 400-step runs scored 15.5, 15.5 and 15.7 dB (seeds 0, 1, 2):
the blurred average of every view, the table's 800-step result.
"""
import pytest

from benchmarks import janus
from dreamfusion_jax.toy import sweep as toy_sweep

pytestmark = pytest.mark.slow

STEPS = 400  # The benchmark's SIZE otherwise (16 + 8 samples, no orientation loss).
PLAIN, PERP_NEG, NO_VIEW_WORDS = ('discrete', 'none'), ('discrete', 'perp_neg'), ('none', 'none')
SETTINGS = (PLAIN, PERP_NEG, NO_VIEW_WORDS)  # (prompts.view_mode, prompts.negatives)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """{(view_mode, negatives): janus.score row} of the discrete pair without negatives and with
  Perp-Neg, and of the run without view words."""
  tmp = tmp_path_factory.mktemp('janus')
  sweep = []
  for view_mode, negatives in SETTINGS:
    setting = {'prompts.view_mode': view_mode, 'prompts.negatives': negatives,
               'toy.caption_noise': 0.0}
    sweep.append(('janus', setting, {**setting, 'seed': 0, 'toy.cache_dir': str(tmp / 'prior')}))
  rows = toy_sweep.run_all(sweep, 2, str(tmp / 'rows.jsonl'), dict(janus.SIZE, num_steps=STEPS),
                           janus.score)
  assert len(rows) == len(SETTINGS), 'a run failed (its stderr is printed above)'
  return {(r['setting']['prompts.view_mode'], r['setting']['prompts.negatives']): r for r in rows}


def marks(row):
  """The ketchup's fraction of each held-out view, for the failure messages."""
  return [round(v['mark'], 3) for v in row['views']]


def test_plain_guidance_paints_no_ketchup_where_the_truth_has_none(runs):
  # (Whether it paints the front's yet depends on the seed at this length: 1 seed of 3 at 500.)
  assert not runs[PLAIN]['janus'], marks(runs[PLAIN])


def test_perp_neg_at_threestudio_weights_paints_it_where_the_truth_has_none(runs):
  plain, perp_neg = runs[PLAIN], runs[PERP_NEG]
  assert perp_neg['janus'], marks(perp_neg)
  # ... and the object is worse for it: the patches are not a side effect of a better fit.
  assert perp_neg['psnr'] < plain['psnr'] - 3.0, (perp_neg['psnr'], plain['psnr'])


def test_without_view_words_the_object_is_the_average_of_its_views(runs):
  """The paper's view-prompt ablation: one prompt for every view pulls each render toward the
  average of all views (measured at this length: 15.5-15.7 dB against 22.9-23.5 with the paper's
  view words, seeds 0, 1, 2; at 800 steps no seed without view words forms either mark)."""
  plain, none = runs[PLAIN], runs[NO_VIEW_WORDS]
  assert none['psnr'] < plain['psnr'] - 3.0, (none['psnr'], plain['psnr'])
  assert not none['front'], marks(none)

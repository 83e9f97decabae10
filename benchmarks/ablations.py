"""The paper's ablations in the toy world (not a test: it prints a table and writes JSON).

  python -m benchmarks.ablations                        # all below, 3 seeds (~20 min, 2 cores)
  python -m benchmarks.ablations --only=grid --seeds=0  # one seed of the feature grid
  python -m benchmarks.ablations --only=omega --jobs=1  # the guidance-scale sweep, one process

Every run is configs/toy.py at a reduced size (SIZE below: fewer steps and samples, the schedules
shrunk with the run) against the toy world's exact prior, scored at the held-out cameras against
the true object (toy.make_evaluate). Two studies:

  grid   seeds x prompts.view_mode {discrete, interpolated, none} x ablation.shading {on, off} x
         ablation.textureless {on, off}: the paper's Fig. 6 in miniature. With shading off every
         render is albedo, so the textureless toggle changes nothing: those pairs are one run,
         reported on both rows.
  omega  seeds x guidance.scale {3, 10, 30, 100} at the config's features: the paper's Fig. 9
         (the guidance-scale sweep) in miniature, with the foreground's colour saturation.

Columns: whole-image and foreground albedo PSNR (dB), silhouette IoU, mean normal error inside
both silhouettes (degrees), the front mark's pixel fraction in the front view and in the back view
(the truth: about 0.024 and 0), the fraction of seeds whose mark sits in front and not in back,
and the foreground's mean saturation against the truth's. Means over seeds, then the spread
(max - min) in brackets.

Runs go to --jobs worker processes (default 2, one per core), each single-threaded
(dreamfusion_jax/toy/sweep.py). Each run's scores are one JSON line in --out, and a rerun skips the
runs --out already holds.
"""
import argparse
import itertools

import numpy as np

from dreamfusion_jax.toy import sweep as toy_sweep
from dreamfusion_jax import toy

# The reduced size: steps and samples (and with them every schedule). 36 runs of about 60 s, two
# at a time, take about 20 minutes on the 2-core CI machine.
SIZE = {
    'num_steps': 200,
    'render.num_samples': 16,
    'render.num_importance_samples': 8,
}
GRID_AXES = (('prompts.view_mode', ('discrete', 'interpolated', 'none')),
             ('ablation.shading', (True, False)),
             ('ablation.textureless', (True, False)))
OMEGAS = (3.0, 10.0, 30.0, 100.0)
SCORES = ('psnr', 'psnr_fg', 'iou', 'normal_err_deg', 'mark_front', 'mark_back', 'saturation',
          'saturation_truth')


def score(metrics):
  """The columns of one run from its final metrics."""
  return {k: metrics[k] for k in SCORES}


def studies(only, seeds):
  """[(study, setting, overrides)] for the requested studies and seeds."""
  runs = []
  if only in ('all', 'grid'):
    names = [name for name, _ in GRID_AXES]
    for values in itertools.product(*[v for _, v in GRID_AXES]):
      setting = dict(zip(names, values))
      if not setting['ablation.shading'] and not setting['ablation.textureless']:
        continue  # The same run as textureless on (no shaded renders at all).
      for seed in seeds:
        runs.append(('grid', setting, {**setting, 'seed': seed}))
  if only in ('all', 'omega'):
    default = toy_sweep.toy_config().guidance.scale
    for omega in OMEGAS:
      if only == 'all' and omega == default:
        continue  # The grid's run at the config's own features (with_shared_runs reuses it).
      for seed in seeds:
        runs.append(('omega', {'guidance.scale': omega}, {'guidance.scale': omega, 'seed': seed}))
  return runs


def with_shared_runs(results):
  """The omega study plus the grid's runs at the config's own features, relabelled: those are
  the omega sweep's runs at the config's omega."""
  config = toy_sweep.toy_config()
  default = {name: config[name.split('.')[0]][name.split('.')[1]] for name, _ in GRID_AXES}
  shared = [dict(r, study='omega', setting={'guidance.scale': config.guidance.scale})
            for r in results if r['study'] == 'grid' and r['setting'] == default]
  return results + shared


def table(results, study):
  """Markdown rows: mean over seeds and (max - min) of each score, per setting."""
  rows = [r for r in results if r['study'] == study]
  settings = toy_sweep.settings_of(rows)
  if study == 'omega':
    settings.sort(key=lambda setting: setting['guidance.scale'])
  lines = ['| setting | seeds | PSNR | fg PSNR | IoU | normal err | mark front | mark back | '
           'mark front only | saturation (truth) |', '|' + ' --- |' * 10]
  for setting in settings:
    group = [r for r in rows if r['setting'] == setting]
    cell = lambda k, f: toy_sweep.mean_spread(group, k, f)  # pylint: disable=cell-var-from-loop
    right = np.mean([r['mark_front'] >= toy.MARK_PRESENT and r['mark_back'] < toy.MARK_PRESENT
                     for r in group])
    lines.append(f"| {toy_sweep.label(setting)} | {len(group)} | {cell('psnr', '.1f')} | "
                 f"{cell('psnr_fg', '.1f')} | {cell('iou', '.3f')} | "
                 f"{cell('normal_err_deg', '.0f')} | {cell('mark_front', '.3f')} | "
                 f"{cell('mark_back', '.3f')} | {right:.2f} | "
                 f"{np.mean([r['saturation'] for r in group]):.2f} "
                 f"({np.mean([r['saturation_truth'] for r in group]):.2f}) |")
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--only', choices=('all', 'grid', 'omega'), default='all')
  toy_sweep.add_arguments(parser, 'ablations.jsonl')
  args = parser.parse_args()
  runs = studies(args.only, toy_sweep.seeds_of(args))
  results = with_shared_runs(toy_sweep.run_all(runs, args.jobs, args.out, SIZE, score))
  for study in ('grid', 'omega'):
    if any(r['study'] == study for r in results):
      print(f'\n{study}\n{table(results, study)}')


if __name__ == '__main__':
  main()

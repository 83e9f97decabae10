"""The paper's ablations in the toy world (not a test: it prints a table and writes JSON).

  python -m benchmarks.ablations                        # all below, 3 seeds (~60 min, 2 cores)
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

Runs go to --jobs worker processes (default 2, one per core), each single-threaded. Each run's
scores are one JSON line in --out, and a rerun skips the runs --out already holds.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from dreamfusion_jax import toy

# The reduced size: steps and samples (and with them every schedule), nothing else. 36 runs of
# about 3 minutes, two at a time, fit in an hour on the 2-core CI machine.
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


def scaled(overrides):
  """The reduced size's overrides plus every schedule shrunk by the same factor."""
  from configs import toy as toy_config  # pylint: disable=import-outside-toplevel
  config = toy_config.get_config()
  factor = SIZE['num_steps'] / config.num_steps
  out = dict(SIZE)
  for name in ('shading.albedo_only_steps', 'schedule.lambda_sigma_steps',
               'schedule.orientation_steps', 'optimizer.warmup_steps',
               'optimizer.decay_end_step'):
    section, field = name.split('.')
    out[name] = max(1, int(round(config[section][field] * factor)))
  out.update(overrides)
  return out


def run_one(overrides):
  """Trains one toy run in this process and returns its scores (a dict of floats)."""
  from configs import toy as toy_config  # pylint: disable=import-outside-toplevel
  from dreamfusion_jax import runner  # pylint: disable=import-outside-toplevel
  config = toy_config.get_config()
  config.update_from_flattened_dict(overrides)  # Dotted names, e.g. 'guidance.scale'.
  config.log.preview_every = config.num_steps
  config.log.checkpoint_every = config.num_steps
  with tempfile.TemporaryDirectory() as workdir:
    start = time.time()
    metrics = runner.run(config, os.path.join(workdir, 'run'))
  scores = {k: metrics[k] for k in SCORES}
  scores['wall_s'] = time.time() - start
  return scores


def studies(only, seeds):
  """[(study, label, overrides)] for the requested studies and seeds."""
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
    default = default_omega()
    for omega in OMEGAS:
      if only == 'all' and omega == default:
        continue  # The grid's run at the config's own features (table() reuses it).
      for seed in seeds:
        runs.append(('omega', {'guidance.scale': omega}, {'guidance.scale': omega, 'seed': seed}))
  return runs


def default_omega():
  from configs import toy as toy_config  # pylint: disable=import-outside-toplevel
  return toy_config.get_config().guidance.scale


def default_setting():
  """The grid setting of configs/toy.py as shipped."""
  from configs import toy as toy_config  # pylint: disable=import-outside-toplevel
  config = toy_config.get_config()
  return {name: config[name.split('.')[0]][name.split('.')[1]] for name, _ in GRID_AXES}


def with_shared_runs(results):
  """The omega study plus the grid's runs at the config's own features, relabelled: those are
  the omega sweep's runs at the config's omega."""
  shared = [dict(r, study='omega', setting={'guidance.scale': default_omega()})
            for r in results if r['study'] == 'grid' and r['setting'] == default_setting()]
  return results + shared


def launch(overrides):
  """A worker process for one run: single-threaded XLA, results as the last stdout line."""
  env = dict(os.environ, XLA_FLAGS='--xla_cpu_multi_thread_eigen=false')
  return subprocess.Popen([sys.executable, '-m', 'benchmarks.ablations',
                           f'--child={json.dumps(overrides)}'], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def done_before(out_path):
  """The rows already in out_path (a rerun of a killed benchmark skips their runs)."""
  if not os.path.exists(out_path):
    return []
  with open(out_path) as f:
    return [json.loads(line) for line in f if line.strip()]


def run_all(runs, jobs, out_path):
  """Runs [(study, setting, overrides)] on `jobs` workers; appends each result to out_path.

  Runs whose (study, setting, seed) out_path already holds are not run again.
  """
  results = done_before(out_path)
  done = {(r['study'], json.dumps(r['setting'], sort_keys=True), r['seed']) for r in results}
  pending = [run for run in runs
             if (run[0], json.dumps(run[1], sort_keys=True), run[2]['seed']) not in done]
  active = []
  if len(pending) < len(runs):
    print(f'{len(runs) - len(pending)} runs already in {out_path}', flush=True)
  with open(out_path, 'a') as out:
    while pending or active:
      while pending and len(active) < jobs:
        study, setting, overrides = pending.pop(0)
        active.append((study, setting, overrides, launch(scaled(overrides))))
      time.sleep(1.0)
      for item in list(active):
        study, setting, overrides, proc = item
        if proc.poll() is None:
          continue
        active.remove(item)
        stdout, stderr = proc.communicate()
        if proc.returncode:
          print(f'run {overrides} failed:\n{stderr[-2000:]}', flush=True)
          continue
        row = dict(study=study, setting=setting, seed=overrides['seed'],
                   **json.loads(stdout.strip().splitlines()[-1]))
        results.append(row)
        out.write(json.dumps(row) + '\n')
        out.flush()
        print(f"{len(results)}/{len(runs)} {study} {setting} seed {row['seed']}: "
              f"PSNR {row['psnr']:.2f} IoU {row['iou']:.3f} ({row['wall_s']:.0f} s)", flush=True)
  return results


def label(setting):
  return ' '.join(f"{k.split('.')[-1]}={v}" for k, v in setting.items())


def table(results, study):
  """Markdown rows: mean over seeds and (max - min) of each score, per setting."""
  rows = [r for r in results if r['study'] == study]
  settings = []
  for r in rows:
    if r['setting'] not in settings:
      settings.append(r['setting'])
  if study == 'omega':
    settings.sort(key=lambda setting: setting['guidance.scale'])
  lines = ['| setting | seeds | PSNR | fg PSNR | IoU | normal err | mark front | mark back | '
           'mark front only | saturation (truth) |', '|' + ' --- |' * 10]
  for setting in settings:
    group = [r for r in rows if r['setting'] == setting]
    cell = lambda k, f: (f'{np.mean([r[k] for r in group]):{f}} '
                         f'({np.ptp([r[k] for r in group]):{f}})')
    right = np.mean([r['mark_front'] >= toy.MARK_PRESENT and r['mark_back'] < toy.MARK_PRESENT
                     for r in group])
    lines.append(f"| {label(setting)} | {len(group)} | {cell('psnr', '.1f')} | "
                 f"{cell('psnr_fg', '.1f')} | {cell('iou', '.3f')} | "
                 f"{cell('normal_err_deg', '.0f')} | {cell('mark_front', '.3f')} | "
                 f"{cell('mark_back', '.3f')} | {right:.2f} | "
                 f"{np.mean([r['saturation'] for r in group]):.2f} "
                 f"({np.mean([r['saturation_truth'] for r in group]):.2f}) |")
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--only', choices=('all', 'grid', 'omega'), default='all')
  parser.add_argument('--seeds', default='0,1,2', help='comma-separated training seeds')
  parser.add_argument('--jobs', type=int, default=2, help='runs at once (one per core)')
  parser.add_argument('--out', default='ablations.jsonl', help='results, one JSON line per run')
  parser.add_argument('--child', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(run_one(json.loads(args.child))))
    return
  seeds = [int(s) for s in args.seeds.split(',')]
  runs = studies(args.only, seeds)
  print(f'{len(runs)} runs at {SIZE}, {args.jobs} at a time; results to {args.out}', flush=True)
  results = run_all(runs, args.jobs, args.out)
  results = with_shared_runs(results)
  for study in ('grid', 'omega'):
    if any(r['study'] == study for r in results):
      print(f'\n{study}\n{table(results, study)}')


if __name__ == '__main__':
  main()

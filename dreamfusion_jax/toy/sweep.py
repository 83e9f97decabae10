"""Sweeps of short toy-world runs, shared by benchmarks/ (ablations, janus, library) and the slow
tests.

A sweep is a list of runs (study, setting, overrides): configs/toy.py at a reduced size with
dotted-name overrides (ml_collections' flattened names, e.g. 'guidance.scale'). Each run trains in
its own single-threaded worker process (`python -m dreamfusion_jax.toy.sweep OVERRIDES_JSON`
prints the run's final metrics as its last stdout line), `jobs` at a time; the parent appends one
JSON line of scores per run to an output file, and a rerun skips the runs that file already
holds, so a killed sweep resumes where it stopped.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from dreamfusion_jax import schedules

# The repository (a sweep trains its configs/toy.py, so it runs from a checkout).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# XLA's CPU thread pool in every worker (NPROC; by default the machine's core count). Its sums
# split over the pool, so the pool's size changes the rounding, and a run's numbers with it (one
# core instead of two: discrete seed 0 of benchmarks/janus.py 24.7 dB instead of 24.3). Fixed at
# the 2 of the machine the tables were made on, a sweep reproduces them bit for bit whatever the
# core count (measured: a run pinned to one core, the same params_digest as on two).
POOL_THREADS = '2'
Run = Tuple[str, Dict, Dict]  # (study, setting (what the table groups by), overrides incl. seed)
# configs/toy.py before issue 24 changed its background and initial density: a white background
# only, and the paper's density init (no offset, blob scale 5: a fog of opacity ~0.9). The Janus
# tables in docs/verification.md were measured on it, so benchmarks/janus.py (and the slow test
# that reruns its rows) keeps it in its SIZE until they are measured again on the current default.
PREVIOUS_DEFAULT = {
    'field.background': 'white',
    'toy.backgrounds': (1.0,),
    'field.density_offset': 0.0,
    'field.density_bias_scale': 5.0,
}


def toy_config():
  from configs import toy  # pylint: disable=import-outside-toplevel
  return toy.get_config()


def scaled(size: Dict, overrides: Dict) -> Dict:
  """size's overrides (num_steps and any others) plus every schedule scaled to its num_steps
  (schedules.short_run_lengths, as configs/toy.py's), then `overrides`."""
  out = dict(size)
  out.update(schedules.short_run_lengths(size['num_steps']))
  out.update(overrides)
  return out


def train(overrides: Dict) -> Dict:
  """Trains configs/toy.py with `overrides` in this process; its final metrics (toy.make_evaluate's,
  per-view rows included) plus wall_s."""
  from dreamfusion_jax import runner  # pylint: disable=import-outside-toplevel
  config = toy_config()
  config.update_from_flattened_dict(overrides)
  config.log.preview_every = config.num_steps
  config.log.checkpoint_every = config.num_steps
  config.log.eval_every = 0  # Final metrics only: the sweeps read metrics.json, not curves.
  with tempfile.TemporaryDirectory() as workdir:
    start = time.time()
    metrics = runner.run(config, os.path.join(workdir, 'run'))
  metrics['wall_s'] = time.time() - start
  return metrics


def launch(overrides: Dict, compile_cache: Optional[str] = None) -> subprocess.Popen:
  """A worker process for one run: single-threaded XLA, its metrics as the last stdout line.

  compile_cache: a directory for JAX's persistent compilation cache, shared by a sweep's workers.
  Every program, down to the eager ops, is compiled by the first run that needs it and loaded by
  the rest: the same executable, so the same results (the same params_digest, measured), and a
  Janus run alone takes 89 s instead of 111.
  """
  env = dict(os.environ, XLA_FLAGS='--xla_cpu_multi_thread_eigen=false', NPROC=POOL_THREADS)
  if compile_cache:
    env.update(JAX_COMPILATION_CACHE_DIR=compile_cache,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')
  return subprocess.Popen(
      [sys.executable, '-m', 'dreamfusion_jax.toy.sweep', json.dumps(overrides)], cwd=ROOT,
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _key(study, setting, seed) -> Tuple[str, str, int]:
  return study, json.dumps(setting, sort_keys=True), seed


def done_before(out_path: str) -> List[Dict]:
  """The rows already in out_path (a rerun of a killed sweep skips their runs)."""
  if not os.path.exists(out_path):
    return []
  with open(out_path) as f:
    return [json.loads(line) for line in f if line.strip()]


def build_priors(runs: Sequence[Run], size: Dict) -> None:
  """Builds, in this process, each prior the runs read that is not cached yet, once: the workers
  then load it instead of each building the same one."""
  from dreamfusion_jax import toy  # pylint: disable=import-outside-toplevel
  seen = set()
  for _, _, overrides in runs:
    config = toy_config()
    config.update_from_flattened_dict(scaled(size, overrides))
    path = toy.dataset_path(config)
    if path not in seen and not os.path.exists(path):
      print(f'building the prior {path}', flush=True)
      toy.build_dataset(config)
    seen.add(path)


def run_all(runs: Sequence[Run], jobs: int, out_path: str, size: Dict,
            score: Callable[[Dict], Dict]) -> List[Dict]:
  """Runs each (study, setting, overrides) at `size` on `jobs` workers and appends its row
  (study, setting, seed, score(metrics), wall_s) to out_path. Returns every row of out_path.

  Runs whose (study, setting, seed) out_path already holds at this size are not run again; its
  rows at another size (a benchmark's SIZE changed since) are left out of the returned rows.
  """
  print(f'{len(runs)} runs at {size}, {jobs} at a time; results to {out_path}', flush=True)
  size = json.loads(json.dumps(size))  # As the rows store it (tuples become lists).
  results = done_before(out_path)
  other = [r for r in results if r.get('size') != size]
  if other:
    print(f'{len(other)} rows of {out_path} are at another size and are not used', flush=True)
  results = [r for r in results if r.get('size') == size]
  done = {_key(r['study'], r['setting'], r['seed']) for r in results}
  pending = [run for run in runs if _key(run[0], run[1], run[2]['seed']) not in done]
  if len(pending) < len(runs):
    print(f'{len(runs) - len(pending)} runs already in {out_path}', flush=True)
  build_priors(pending, size)
  active = []
  with open(out_path, 'a') as out, tempfile.TemporaryDirectory(prefix='jax_cache_') as cache:
    while pending or active:
      while pending and len(active) < jobs:
        study, setting, overrides = pending.pop(0)
        active.append((study, setting, overrides, launch(scaled(size, overrides), cache)))
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
        metrics = json.loads(stdout.strip().splitlines()[-1])
        row = dict(study=study, setting=setting, seed=overrides['seed'], **score(metrics),
                   wall_s=metrics['wall_s'], size=size)
        results.append(row)
        out.write(json.dumps(row) + '\n')
        out.flush()
        print(f"{len(results)} rows: {study} {label(setting)} seed {row['seed']}: PSNR "
              f"{row['psnr']:.2f} ({row['wall_s']:.0f} s)", flush=True)
  return results


def add_arguments(parser, default_out: str):
  """The options every sweep takes: --seeds, --jobs and --out (parse seeds with seeds_of)."""
  parser.add_argument('--seeds', default='0,1,2', help='comma-separated training seeds')
  parser.add_argument('--jobs', type=int, default=2, help='runs at once (one per core)')
  parser.add_argument('--out', default=default_out, help='results, one JSON line per run')


def seeds_of(args) -> List[int]:
  """The --seeds option as ints."""
  return [int(s) for s in args.seeds.split(',')]


def label(setting: Dict) -> str:
  """'view_mode=fine caption_noise=0.3' for {'prompts.view_mode': 'fine', ...}."""
  return ' '.join(f"{k.split('.')[-1]}={v}" for k, v in setting.items())


def settings_of(rows: Sequence[Dict]) -> List[Dict]:
  """The distinct settings of rows, in order of first appearance."""
  out = []
  for r in rows:
    if r['setting'] not in out:
      out.append(r['setting'])
  return out


def mean_spread(group: Sequence[Dict], key: str, fmt: str) -> str:
  """'mean (max - min)' of group's values of key over seeds."""
  values = [r[key] for r in group]
  return f'{np.mean(values):{fmt}} ({np.ptp(values):{fmt}})'


if __name__ == '__main__':
  print(json.dumps(train(json.loads(sys.argv[1]))))

"""A run's directory (--workdir): what a run writes there, whether a run may use it, and the
files it keeps.

  check_workdir / claim_workdir   set-up: writable and free for this config (writes nothing), then
                                  made (and an earlier run removed on --overwrite)
  write_config, config_dict       config.json, the resolved config
  finished_results                a finished run's metrics.json, so a rerun changes nothing
  keep_earlier_metrics            an extended run keeps the earlier metrics as metrics_step_N.json
  write_json, write_text          atomic writes: a reader never sees half a file

The training loop is runner.py's, the checkpoints' format checkpoints.py's.
"""
import json
import os
import shutil
import tempfile
from typing import Dict, Optional

from dreamfusion_jax import checkpoints
from dreamfusion_jax import config_check
from dreamfusion_jax.errors import SetupError

# What run() writes under the workdir: --overwrite deletes exactly these.
RUN_FILES = ('checkpoints', 'corrupt_checkpoints', 'previews', 'tensorboard', 'metrics.json',
             'config.json')
# Fields that may differ from the workdir's config.json: num_steps extends (or is) the same run,
# since no schedule depends on it (schedules.py).
MAY_DIFFER = ('num_steps',)


def write_json(path: str, obj) -> None:
  """Writes JSON atomically (a reader never sees half a file)."""
  write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def write_text(path: str, text: str) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def config_dict(config) -> Dict:
  """The config as config.json holds it (JSON: tuples become lists)."""
  return json.loads(config.to_json_best_effort())


def check_writable(workdir: str) -> None:
  """SetupError unless the workdir exists (or can be made) and takes a new file.

  Leaves no trace: directories it had to make for the check are removed again (the run makes
  them for good once set-up has succeeded, claim_workdir).
  """
  made = _missing_ancestors(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise SetupError(f'--workdir={workdir}: cannot write there ({e.strerror or e}); choose a '
                     'directory you can write to') from e
  finally:
    for path in made:  # Deepest first.
      if os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)


def _missing_ancestors(workdir: str) -> list:
  """workdir and those of its parents that do not exist yet, deepest first."""
  missing, path = [], os.path.abspath(workdir)
  while not os.path.exists(path):
    missing.append(path)
    path = os.path.dirname(path)
  return missing


def remove_run(workdir: str) -> None:
  """Deletes what an earlier run wrote in the workdir (RUN_FILES), config.json last."""
  for name in sorted(os.listdir(workdir)):
    if name.startswith('metrics_step_') and name.endswith('.json'):  # keep_earlier_metrics'
      os.remove(os.path.join(workdir, name))
  for name in RUN_FILES:
    path = os.path.join(workdir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)


def check_reuse(config, workdir: str) -> None:
  """SetupError if the workdir holds a run of another config (num_steps aside)."""
  path = os.path.join(workdir, 'config.json')
  fix = 'Use a new --workdir, or --overwrite to delete that run and start again.'
  if not os.path.exists(path):
    if os.path.isdir(checkpoints.directory(workdir)) and os.listdir(
        checkpoints.directory(workdir)):
      raise SetupError(f'--workdir={workdir} has checkpoints but no config.json, so which '
                       f'config made them is unknown. {fix}')
    return
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise SetupError(f'{path} cannot be read ({e}). {fix}') from e
  changed = config_check.differences(old, config_dict(config), ignore=MAY_DIFFER)
  if changed:
    lines = '\n'.join(f'  config.{p}: {config_check.show(a)} there, {config_check.show(b)} now'
                      for p, a, b in changed)
    raise SetupError(f'--workdir={workdir} holds a run with another config:\n{lines}\n'
                     f'Only num_steps may change when a workdir is reused (that extends the '
                     f'run). {fix}')


def check_workdir(config, workdir: str, overwrite: bool) -> None:
  """SetupError unless the workdir is writable and free for this config (any run, with
  overwrite). Writes nothing: a run that fails at set-up leaves the workdir as it was."""
  check_writable(workdir)
  if not overwrite:
    check_reuse(config, workdir)


def claim_workdir(workdir: str, overwrite: bool) -> None:
  """Once set-up has succeeded: makes the workdir, deleting an earlier run there if overwrite."""
  os.makedirs(workdir, exist_ok=True)
  if overwrite:
    remove_run(workdir)


def write_config(config, workdir: str) -> None:
  """WORKDIR/config.json, the resolved config (after the checkpoints were found compatible)."""
  write_text(os.path.join(workdir, 'config.json'),
             config.to_json_best_effort(indent=2, sort_keys=True))


def finished_results(workdir: str, start_step: int, num_steps: int) -> Optional[Dict]:
  """metrics.json of a run that already took num_steps steps (marked already_finished), or None
  (then the run goes on, into a loop of no steps if its metrics.json is missing or unreadable)."""
  path = os.path.join(workdir, 'metrics.json')
  if start_step < num_steps or not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      results = json.load(f)
  except (OSError, ValueError):
    return None  # Unreadable: the loop of no steps writes it again.
  return dict(results, already_finished=True) if results.get('steps') == start_step else None


def keep_earlier_metrics(workdir: str) -> None:
  """Before an extended run writes metrics.json: the earlier run's is kept as
  metrics_step_N.json (N its steps), so a finished run's results are never lost."""
  path = os.path.join(workdir, 'metrics.json')
  try:
    with open(path) as f:
      steps = int(json.load(f)['steps'])
  except (OSError, ValueError, KeyError, TypeError):
    return
  os.replace(path, os.path.join(workdir, f'metrics_step_{steps:06d}.json'))

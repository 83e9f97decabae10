"""What the tests share: the repository's path, a tiny toy config, and the CLIs as subprocesses.

  ROOT                       the repository (the CLIs run from it, as the README's commands do)
  TINY_TOY                   flags that shrink configs/toy.py to a run of seconds
  run_cli(script, *args)     python SCRIPT ARGS from ROOT -> CompletedProcess (text, captured)
  launch_train(*flags, ...)  run_train.py as a Popen (stdout and stderr piped)
  run_train(*flags, ...)     run_train.py to completion -> CompletedProcess
"""
import os
import subprocess
import sys
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# configs/toy.py at a size that runs in seconds: 12x12 renders, 12 + 4 samples, a 1 x 16 MLP and
# a prior of 12 images of each of two objects. Callers add num_steps and their log intervals.
TINY_TOY = [
    '--config.render.resolution=12', '--config.render.num_samples=12',
    '--config.render.num_importance_samples=4', '--config.field.width=16',
    '--config.field.num_blocks=1', '--config.toy.images_per_object=12',
    "--config.toy.objects=('toy hamburger','red ball')", '--config.log.preview_resolution=12',
]


def run_cli(script: str, *args, timeout: float = 600, env: Optional[dict] = None,
            **kwargs) -> subprocess.CompletedProcess:
  """`python SCRIPT ARGS` from the repository, its output captured as text."""
  return subprocess.run([sys.executable, script, *map(str, args)], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout, env=env, **kwargs)


def _train_argv(flags, workdir, config):
  workdir_flag = [] if workdir is None else [f'--workdir={workdir}']
  # The config first: a later --config=... in flags replaces it (absl keeps the last).
  return [f'--config={config}', *workdir_flag, *map(str, flags)]


def launch_train(*flags, workdir, config: str = 'configs/toy.py', env: Optional[dict] = None,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs) -> subprocess.Popen:
  """run_train.py --config=CONFIG --workdir=WORKDIR FLAGS, started; its output piped as text
  unless stdout / stderr say otherwise (None: inherited; subprocess.STDOUT)."""
  return subprocess.Popen([sys.executable, 'run_train.py', *_train_argv(flags, workdir, config)],
                          cwd=ROOT, env=env, stdout=stdout, stderr=stderr, text=True, **kwargs)


def run_train(*flags, workdir, config: str = 'configs/toy.py', timeout: float = 900,
              env: Optional[dict] = None) -> subprocess.CompletedProcess:
  """run_train.py --config=CONFIG --workdir=WORKDIR FLAGS to the end (workdir None: no flag)."""
  return run_cli('run_train.py', *_train_argv(flags, workdir, config), timeout=timeout, env=env)

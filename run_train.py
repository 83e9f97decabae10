"""Turns a prompt into a NeRF: python run_train.py --config=CONFIG --workdir=DIR [--config.F=V ...]

  python run_train.py --config=configs/toy.py --workdir=runs/toy
  python run_train.py --config=configs/hamburger.py --workdir=runs/burger --config.guidance.scale=50

Runs unchanged on a multi-host pod: jax.distributed is initialised when the environment asks for
it (JAX_COORDINATOR_ADDRESS, or a TPU pod / SLURM / Open MPI launch that jax detects), and only
process 0 writes files.
"""
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory (checkpoints, logs, results).')
flags.mark_flags_as_required(['config', 'workdir'])

_CLUSTER_ENV = ('JAX_COORDINATOR_ADDRESS', 'TPU_WORKER_HOSTNAMES', 'SLURM_JOB_ID',
                'OMPI_COMM_WORLD_SIZE')


def maybe_initialize_distributed() -> None:
  """jax.distributed.initialize() when launched as one process of several."""
  import jax
  if any(os.environ.get(k) for k in _CLUSTER_ENV):
    jax.distributed.initialize()


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
  maybe_initialize_distributed()
  from dreamfusion_jax import runner
  from dreamfusion_jax.errors import SetupError
  try:
    results = runner.run(_CONFIG.value, _WORKDIR.value)
  except SetupError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  print(f"done: {results['steps']} steps, {results['skipped_steps']} skipped, "
        f"{results['wall_time_s']:.0f} s; results in {_WORKDIR.value}/metrics.json")


if __name__ == '__main__':
  app.run(main)

"""Turns a prompt into a NeRF: python run_train.py --config=CONFIG --workdir=DIR [--config.F=V ...]

  python run_train.py --config=configs/toy.py --workdir=runs/toy
  python run_train.py --config=configs/hamburger.py --workdir=runs/burger --config.guidance.scale=50

Rerunning the same command resumes from the newest intact checkpoint in DIR (after a kill, a
crash or a preemption) and ends with the same params as a run never interrupted. Changing only
--config.num_steps extends the run; any other change is refused unless --overwrite, which deletes
the run in DIR and starts again.

Exit codes: 0 done; 2 a bad config, command line or workdir (one line per problem, naming the
field and what it allows); 1 a failure during training a person can fix (a checkpoint that
cannot be written); 130 interrupted (Ctrl-C): the checkpoints written so far are kept, and the
same command resumes from the newest.

Runs unchanged on a multi-host pod: jax.distributed is initialised when the environment asks for
it (a TPU pod, SLURM or Open MPI launch that jax detects, or JAX_COORDINATOR_ADDRESS with
JAX_NUM_PROCESSES and JAX_PROCESS_ID), and only process 0 writes files.
"""
import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from dreamfusion_jax.errors import fail

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory (checkpoints, logs, results).')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Delete the run already in --workdir and start again, even if '
                               'its config differs.')
flags.mark_flags_as_required(['config', 'workdir'])

_CLUSTER_ENV = ('JAX_COORDINATOR_ADDRESS', 'TPU_WORKER_HOSTNAMES', 'SLURM_JOB_ID',
                'OMPI_COMM_WORLD_SIZE')


def parse_flags(argv):
  """absl's flag parsing, with its errors (and ml_collections') as one clean message, exit 2."""
  from dreamfusion_jax import config_check
  try:
    rest = flags.FLAGS(argv)
  except Exception as e:  # absl's flags.Error; a KeyError for an override of an unknown field.
    fail(config_check.explain_flag_error(argv, e, config_check.reference()), 2)
  try:
    _CONFIG.value.keys()  # ml_collections defers a config file's load error to the first use.
  except Exception as e:  # pylint: disable=broad-except
    path = config_flags.get_config_filename(flags.FLAGS['config'])
    fail(config_check.explain_config_file_error(path, e), 2)
  return rest


def maybe_initialize_distributed() -> None:
  """jax.distributed.initialize() when launched as one process of several."""
  import jax
  if not any(os.environ.get(k) for k in _CLUSTER_ENV):
    return
  count, index = os.environ.get('JAX_NUM_PROCESSES'), os.environ.get('JAX_PROCESS_ID')
  if count is not None and index is not None:  # A launch jax cannot detect: say it all.
    jax.distributed.initialize(os.environ['JAX_COORDINATOR_ADDRESS'], num_processes=int(count),
                               process_id=int(index))
  else:
    jax.distributed.initialize()


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
  maybe_initialize_distributed()
  from dreamfusion_jax import checkpoints, runner
  checkpoints.silence_orbax_echoes()
  from dreamfusion_jax.errors import RunError, SetupError
  try:
    results = runner.run(_CONFIG.value, _WORKDIR.value, overwrite=_OVERWRITE.value)
  except SetupError as e:
    fail(str(e), 2)
  except RunError as e:
    fail(str(e), 1)
  except KeyboardInterrupt:
    fail(f'interrupted: the checkpoints in {_WORKDIR.value}/checkpoints are kept; run the same '
         'command again to resume from the newest', 130)
  if results.get('already_finished'):
    print(f"already finished: {results['steps']} steps; results in {_WORKDIR.value}/metrics.json "
          '(unchanged; a larger --config.num_steps extends the run)')
    return
  print(f"done: {results['steps']} steps, {results['skipped_steps']} skipped, "
        f"{results['wall_time_s']:.0f} s; results in {_WORKDIR.value}/metrics.json")


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)

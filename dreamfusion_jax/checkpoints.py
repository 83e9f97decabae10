"""Checkpoints that survive kill -9, corruption and failed writes (orbax, written by process 0).

Layout: WORKDIR/checkpoints/<step>/state is the train state (host arrays) and
WORKDIR/checkpoints/<step>/integrity a JSON record of the sha256 of the state's bytes
(train.params_digest over the whole state).

What orbax 0.12.8 gives, and what this module adds:
  - A step is written into <step>.orbax-checkpoint-tmp and renamed to <step> when complete, so a
    kill mid-write leaves only the temporary directory. Orbax never lists it as a step, and the
    training manager (writer=True) deletes it at start-up (cleanup_tmp_directories).
  - latest_step() is the newest finalised directory, whatever is inside. A file truncated or
    lost after the rename (a full disk, a crash before the page cache reached the disk, bit rot)
    is found only by reading it back: restore_latest() restores the newest step, compares its
    bytes with the integrity record, and on any failure says so on stderr and tries the one
    before; the training run moves the bad steps to WORKDIR/corrupt_checkpoints/ so the run can
    write those steps again.
  - Saving is synchronous: a write error (a read-only or full disk) surfaces in save(), which
    raises RunError naming the directory and the steps still intact. Orbax deletes old steps
    (max_to_keep) only after the new one is committed, so a failed save never costs one.
"""
import contextlib
import logging as pylogging
import os
import shutil
import sys
import time
from typing import Callable, List, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from dreamfusion_jax import train
from dreamfusion_jax.errors import RunError, SetupError

STATE, INTEGRITY = 'state', 'integrity'


def directory(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), 'checkpoints')


def quarantine_directory(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), 'corrupt_checkpoints')


def manager(workdir: str, config, writer: bool = False) -> ocp.CheckpointManager:
  """The orbax manager of WORKDIR/checkpoints.

  writer=True is the training run's (process 0 only): it creates the directory and deletes the
  temporary directories a killed save left. Readers (run_render.py) leave both alone, so they
  never disturb a run in progress.
  """
  path = directory(workdir)
  if writer:
    os.makedirs(path, exist_ok=True)
  options = ocp.CheckpointManagerOptions(
      max_to_keep=config.log.max_checkpoints, save_interval_steps=1,
      enable_async_checkpointing=False, create=False, cleanup_tmp_directories=writer,
      # Process 0 alone reads and writes checkpoints; the runner broadcasts what it restores.
      multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=0,
                                                                 active_processes={0}))
  return ocp.CheckpointManager(path, options=options, item_names=(STATE, INTEGRITY))


def to_host(state: train.TrainState) -> train.TrainState:
  """The state as numpy arrays (0-d arrays for scalars, which orbax restores as such)."""
  return jax.tree.map(np.asarray, jax.device_get(state))


@contextlib.contextmanager
def _quiet_orbax():
  """Orbax logs a failed write with a traceback from its writer thread; save() reports it."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.FATAL)
  try:
    yield
  finally:
    logging.set_verbosity(verbosity)


def _is_orbax_echo(error: Optional[BaseException], message: str) -> bool:
  """Whether an orphaned asyncio error is one of orbax's echoes of a failed write or read."""
  if isinstance(error, RuntimeError) and str(error) == 'Event loop is closed':
    return True
  return message.split('\n', 1)[0].endswith('exception was never retrieved')


def silence_orbax_echoes() -> None:
  """Keeps orbax's echoes of a failed checkpoint write or read off stderr (run_train.py calls it).

  When a write or a read fails, orbax's threads leave two kinds of orphaned asyncio errors, which
  Python prints whenever they happen or are garbage collected: before, among or after our own
  message, each with a traceback.
    - Callbacks posted to an event loop already closed: 'Event loop is closed' RuntimeErrors,
      printed through sys.unraisablehook.
    - Tasks and futures whose error nobody retrieved: 'Task exception was never retrieved' and the
      writer's traceback, logged by the 'asyncio' logger.
  Saving is synchronous, so every such failure also surfaces in save() or restore_latest(), which
  report it in words: exactly these two are dropped. Every other unraisable exception and every
  other asyncio log record still gets through (this program runs no asyncio code of its own).
  """
  previous = sys.unraisablehook

  def hook(unraisable):
    if not _is_orbax_echo(unraisable.exc_value, ''):
      previous(unraisable)

  def keep(record: pylogging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return not _is_orbax_echo(error, record.getMessage())

  sys.unraisablehook = hook
  pylogging.getLogger('asyncio').addFilter(keep)


def save(mgr: ocp.CheckpointManager, state: train.TrainState) -> None:
  """Writes the state (unreplicated) as step int(state.step); RunError if it cannot."""
  host = to_host(state)
  step = int(host.step)
  record = {'sha256': train.params_digest(host), 'step': step}
  try:
    with _quiet_orbax():
      mgr.save(step, args=ocp.args.Composite(**{STATE: ocp.args.StandardSave(host),
                                                INTEGRITY: ocp.args.JsonSave(record)}), force=True)
  except Exception as e:  # Any failure of the write: the message says what to do about it.
    intact = ', '.join(str(s) for s in mgr.all_steps()) or 'none'
    raise RunError(f'could not write checkpoint {step} to {mgr.directory}: {e}\n'
                   f'The checkpoints already there are untouched (steps: {intact}). Free space '
                   'or make the directory writable, then rerun the same command to resume.') from e


def restore(mgr: ocp.CheckpointManager, step: int, template: train.TrainState) -> train.TrainState:
  """Step `step` as host arrays shaped like `template`; ValueError if it does not read back to
  the bytes its integrity record names."""
  like = to_host(template)
  with _quiet_orbax():
    restored = mgr.restore(step, args=ocp.args.Composite(**{
        STATE: ocp.args.StandardRestore(like), INTEGRITY: ocp.args.JsonRestore()}))
  state, record = restored[STATE], restored[INTEGRITY]
  state = jax.tree.map(lambda x, t: np.asarray(x, t.dtype), state, like)
  if not isinstance(record, dict) or 'sha256' not in record:
    raise ValueError(f'no integrity record (got {record!r})')
  digest = train.params_digest(state)
  if digest != record['sha256'] or int(state.step) != step:
    raise ValueError(f'the state read back (sha256 {digest[:12]}..., step {int(state.step)}) is '
                     f"not the one written (sha256 {record['sha256'][:12]}..., step {step})")
  return state


def warn(message: str) -> None:
  print(f'warning: {message}', file=sys.stderr, flush=True)


def restore_latest(mgr: ocp.CheckpointManager, template: train.TrainState,
                   quarantine: Optional[str] = None,
                   report: Callable[[str], None] = warn) -> Optional[train.TrainState]:
  """The newest step that reads back intact, or None when there is no checkpoint.

  Each step that fails is reported (report(message)) and, with `quarantine` (a directory), moved
  there once an older step has restored, so this run writes that step again. SetupError when
  there are checkpoints and none restores: nothing is moved and the message lists why.
  """
  failed: List[Tuple[int, str]] = []
  for step in sorted(mgr.all_steps(), reverse=True):
    try:
      state = restore(mgr, step, template)
    except Exception as e:  # Whatever orbax or the integrity check raised: try the one before.
      reason = ' '.join(str(e).split())[:500]
      failed.append((step, reason))
      report(f'checkpoint {step} in {mgr.directory} is corrupted or incomplete ({reason}); '
             'trying the previous one')
      continue
    if failed and quarantine:
      for bad, _ in failed:
        move_aside(mgr, bad, quarantine)
      report(f'moved checkpoint(s) {[s for s, _ in failed]} to {quarantine}; resuming from '
             f'step {step}')
    return state
  if failed:
    reasons = '\n'.join(f'  step {s}: {r}' for s, r in failed)
    raise SetupError(f'no checkpoint in {mgr.directory} can be read back:\n{reasons}\n'
                     'Use --overwrite to start this run again, or a new --workdir.')
  return None


def move_aside(mgr: ocp.CheckpointManager, step: int, quarantine: str) -> None:
  """Moves step `step` out of the manager's directory (kept for inspection, never deleted)."""
  os.makedirs(quarantine, exist_ok=True)
  source = os.path.join(str(mgr.directory), str(step))
  shutil.move(source, os.path.join(quarantine, f'{step}-{time.strftime("%Y%m%d-%H%M%S")}'))
  mgr.reload()


def restore_or_init(manager: ocp.CheckpointManager, model: train.Model, key) -> train.TrainState:
  """The newest checkpoint that reads back intact, or a fresh state from `key`."""
  fresh = train.init_state(model, key)
  state = restore_latest(manager, fresh)
  return fresh if state is None else jax.tree.map(jax.numpy.asarray, state)

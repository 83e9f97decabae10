"""The training loop around the compiled update: set-up, progress, logs, checkpoints, results.

run(config, workdir) is what run_train.py calls. Every process runs the same loop over its local
devices; process 0 alone touches the workdir (config, checkpoints, logs, results) and shares
what it decided (a set-up error, the restored state) with the others.

A run survives being killed: rerunning the same command resumes from the newest checkpoint that
reads back intact (checkpoints.py) and ends bit-identical to an uninterrupted run, because every
random draw of step s comes from (seed, s) inside the update and nothing else (previews,
evaluation, logging) draws randomness.
"""
import contextlib
import itertools
import os
import signal
import sys
import threading
import time
from typing import Callable, Dict, Optional

import imageio.v3 as iio
import jax
import numpy as np
import orbax.checkpoint as ocp
import tqdm

from dreamfusion_jax import backends
from dreamfusion_jax import checkpoints
from dreamfusion_jax import config_check
from dreamfusion_jax import train
from dreamfusion_jax import pictures
from dreamfusion_jax import workdir as workdir_lib
from dreamfusion_jax.errors import RunError, SetupError

# (model, params, step) -> metrics of params trained for `step` steps (the step sets the IPE
# variance they are rendered with, as in training).
EvaluateFn = Callable[[train.Model, dict, int], Dict[str, float]]



def is_writer() -> bool:
  return jax.process_index() == 0


def _shards(x) -> list:
  """A replicated array's local shards (one per device, leading axis 1) in replica order."""
  return sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)


def local_replicas(tree) -> list:
  """Each local device's copy of a pmap-replicated pytree, as numpy, in replica order.

  Copies shard by shard to the host: no device computation, so process 0 may call it alone
  (slicing the replicated arrays is one, and on several processes it hung).
  """
  leaves, treedef = jax.tree.flatten(tree)
  shards = [_shards(x) for x in leaves]
  return [treedef.unflatten([np.asarray(s[i].data)[0] for s in shards])
          for i in range(len(shards[0]))]


def first_replica(tree):
  """The first local device's copy of a pmap-replicated pytree, as numpy (see local_replicas)."""
  return jax.tree.map(lambda x: np.asarray(_shards(x)[0].data)[0], tree)


def scalars(metrics) -> Dict[str, float]:
  """The replicated scalar metrics of a step as floats (the first device's copy)."""
  return {k: float(np.asarray(v)[0]) for k, v in metrics.items() if k != 'views'}


class Logger:
  """TensorBoard scalars and images plus PNG previews under the workdir (process 0 only).

  A resumed run purges the events a killed run logged after its checkpoint (purge_step), so
  TensorBoard shows each step once.
  """

  def __init__(self, workdir: str, start_step: int):
    self.workdir = workdir
    self.writer = None
    if is_writer():
      from tensorboardX import SummaryWriter
      self.writer = SummaryWriter(os.path.join(workdir, 'tensorboard'),
                                  purge_step=start_step + 1 if start_step else None)
      os.makedirs(os.path.join(workdir, 'previews'), exist_ok=True)

  def scalars(self, step: int, values: Dict[str, float]) -> None:
    if self.writer:
      for k, v in values.items():
        self.writer.add_scalar(k, v, step)

  def image(self, step: int, image: np.ndarray) -> None:
    if self.writer:
      self.writer.add_image('preview', image, step, dataformats='HWC')
      path = os.path.join(self.workdir, 'previews', f'step_{step:06d}.png')
      iio.imwrite(path + '.tmp', image, extension='.png')  # Whole or not at all (Ctrl-C).
      os.replace(path + '.tmp', path)

  def close(self) -> None:
    if self.writer:
      self.writer.close()


def heldout_scalars(metrics: Dict) -> Dict[str, float]:
  """An evaluation's scalar metrics as TensorBoard tags heldout/NAME (per-view lists and
  metrics without a value, None, are left out)."""
  return {f'heldout/{k}': float(v) for k, v in metrics.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)}


# --------------------------------------------------------------------------- set-up


_barriers = itertools.count()


def wait_for_all(timeout_s: int = 3600) -> None:
  """Returns when every process has called it (a no-op on one process).

  A barrier of jax.distributed's coordination service, not a collective: CPU (gloo) collectives
  give up when a process is 30 s late to their first use, so the loop's collectives start only
  once every process has compiled what it calls, and each shared decision once all are there.
  """
  if jax.process_count() > 1:
    ocp.multihost.get_jax_distributed_client().wait_at_barrier(
        f'dreamfusion_jax_{next(_barriers)}', timeout_in_ms=timeout_s * 1000)


def from_writer(fn: Callable, like=None):
  """fn() on process 0, shared with every process.

  Returns fn()'s result on process 0 and, when `like` (a pytree of arrays shaped like the result)
  is given, a copy of it on the others. A SetupError or RunError raised by fn is raised on every
  process (the others say that process 0 stopped), so no process waits at a collective for one
  that has exited.
  """
  result, error = like, None
  if is_writer():
    try:
      result = fn()
    except (SetupError, RunError) as e:
      error = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    wait_for_all()
    code = 0 if error is None else 1 if isinstance(error, SetupError) else 2
    code = int(multihost_utils.broadcast_one_to_all(np.int32(code)))
    if error is None and code:
      kind = SetupError if code == 1 else RunError
      raise kind('process 0 stopped (its message says why)')
    if error is None and like is not None:
      result = jax.device_get(multihost_utils.broadcast_one_to_all(result))
  if error is not None:
    raise error
  return result


def restore_state(config, workdir: str, fresh: train.TrainState):
  """(state, start step): the newest intact checkpoint's state (process 0 reads it, every
  process gets it) or `fresh`, and process 0's checkpoint manager (None elsewhere)."""
  manager = None

  def restore():
    nonlocal manager
    manager = checkpoints.manager(workdir, config, writer=True)
    state = checkpoints.restore_latest(manager, fresh,
                                       quarantine=checkpoints.quarantine_directory(workdir))
    if state is not None and int(state.step) > config.num_steps:
      raise SetupError(f'config.num_steps={config.num_steps} is less than the {int(state.step)} '
                       f'steps this run already took in {workdir}: use num_steps >= '
                       f'{int(state.step)}, a new --workdir, or --overwrite')
    if state is not None:
      print(f'resuming from step {int(state.step)} ({manager.directory})', file=sys.stderr,
            flush=True)
    return checkpoints.to_host(fresh) if state is None else state

  state = from_writer(restore, like=checkpoints.to_host(fresh))
  return state, manager


# --------------------------------------------------------------------------- the run


def run(config, workdir: str, evaluate: Optional[EvaluateFn] = None, overwrite: bool = False,
        reference=None) -> Dict:
  """Trains for config.num_steps (resuming from WORKDIR/checkpoints) and writes the results.

  Before anything is built: checks every config field against `reference` (dreamfusion_jax/defaults.py by
  default; config_check.py) and the workdir (writable; no run of another config there unless
  `overwrite`, which deletes it once the prior has loaded). A run that fails at set-up (a bad
  config, a model that cannot load, fewer steps than its checkpoints) changes nothing in the
  workdir. Writes WORKDIR/config.json (the resolved config), checkpoints,
  TensorBoard events, previews and WORKDIR/metrics.json (final metrics, skipped steps, wall time,
  params_digest and whatever `evaluate` returns). Returns the metrics dict.

  Raises SetupError for a bad config or workdir, RunError when a checkpoint cannot be written.
  """
  config_check.check(config, reference)
  train.views_per_device(config)  # SetupError unless render.batch_size splits over the devices.
  from_writer(lambda: workdir_lib.check_workdir(config, workdir, overwrite))
  model = train.build_model(config, backends.build_guidance(config))  # Loads the prior (slow).
  from_writer(lambda: workdir_lib.claim_workdir(workdir, overwrite))
  key_init, key_train = jax.random.split(jax.random.PRNGKey(config.seed))
  fresh = train.init_state(model, key_init)
  with deferred_interrupts():
    state, manager = restore_state(config, workdir, fresh)
  start_step = int(state.step)
  # A rerun of a finished run changes nothing: process 0 decides, every process returns.
  finished = (workdir_lib.finished_results(workdir, start_step, config.num_steps)
              if is_writer() else None)
  if from_writer(lambda: np.bool_(finished is not None), like=np.bool_(False)):
    close_quietly(manager)
    return finished or dict(steps=start_step, already_finished=True)
  from_writer(lambda: workdir_lib.write_config(config, workdir))
  state, frozen = train.replicate(state), train.replicate(train.make_frozen(model))
  ids = train.global_replica_ids()
  # Everything the loop runs is compiled before it starts (see wait_for_all); the calls below
  # find the update's executable in jax's cache.
  update = train.pmap_update(model)
  update.lower(state, frozen, key_train, ids).compile()
  preview = pictures.make_preview_fn(model, config.log.preview_resolution)
  preview(fresh.params, start_step)
  logger = Logger(workdir, start_step)
  evaluate = evaluate or backends.make_evaluate(config)
  initial = evaluate(model, fresh.params, 0)  # Deterministic: the same on a resumed run.
  if not start_step:
    logger.scalars(0, heldout_scalars(initial))  # The held-out curves start at step 0.
  wait_for_all()

  start_time = time.time()
  bar = None
  try:
    bar = tqdm.trange(start_step, config.num_steps, initial=start_step, total=config.num_steps,
                      desc='train', disable=not is_writer(), dynamic_ncols=True)
    state, last = train_loop(config, update, state, frozen, key_train, ids, bar, logger,
                             preview, manager, lambda params, step: evaluate(model, params, step))
  finally:
    if bar is not None:
      bar.close()  # Ends the bar's line: a message after it (Ctrl-C, an error) starts afresh.
    logger.close()
    close_quietly(manager)
  return finish(config, workdir, model, state, initial, last, evaluate, start_step, start_time)


@contextlib.contextmanager
def deferred_interrupts():
  """Ctrl-C (SIGINT) inside the block is held until it ends, then raised as KeyboardInterrupt.

  Around orbax's reads and writes: a checkpoint is written whole, and orbax's asyncio loop,
  which replaces the default SIGINT handler with one that cancels its task (and so swallowed
  the interrupt: the run went on), never sees the signal. Main thread only (signal's rule).
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  received = []
  previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)
  if received:
    raise KeyboardInterrupt


def close_quietly(manager) -> None:
  """Waits for and shuts down the checkpoint manager's background writes (process 0 only).

  On the way out of a failed save it may raise again; the save's RunError already says why.
  """
  if manager is not None:
    try:
      manager.close()
    except Exception:  # pylint: disable=broad-except
      pass


def train_loop(config, update, state, frozen, key_train, ids, bar, logger, preview, manager,
               evaluate):
  """The steps from the state's step to num_steps: update, log, held-out metrics, preview,
  checkpoint. evaluate: (params, step) -> metrics (runner.EvaluateFn with the model bound).

  Returns (state, the last logged scalars).
  """
  last, skipped_seen = {}, int(first_replica(state.skipped))
  for step in bar:
    state, metrics = update(state, frozen, key_train, ids)
    done = step + 1
    if done % config.log.every == 0 or done == config.num_steps:
      last = scalars(metrics)
      logger.scalars(done, last)
      bar.set_postfix(loss=f"{last['loss']:.3g}", sds=f"{last['loss_sds']:.3g}",
                      orient=f"{last['loss_orientation']:.3g}", t=f"{last['t']:.2f}",
                      skipped=int(last['skipped']))
      if last['skipped'] > skipped_seen and is_writer():
        skipped_seen = int(last['skipped'])
        bar.write(f'warning: {skipped_seen} step(s) skipped so far, as of step {done}: their '
                  'gradients were not finite, so the params kept their values', file=sys.stderr)
    if config.log.eval_every and (done % config.log.eval_every == 0
                                  or done == config.num_steps):
      logger.scalars(done, heldout_scalars(evaluate(first_replica(state.params), done)))
    if done % config.log.preview_every == 0 or done == config.num_steps:
      logger.image(done, preview(first_replica(state.params), done))
    if done % config.log.checkpoint_every == 0 or done == config.num_steps:
      with deferred_interrupts():  # A checkpoint is written whole, then Ctrl-C stops the run.
        from_writer(lambda: checkpoints.save(manager, first_replica(state)))
  return state, last


def finish(config, workdir, model, state, initial, last, evaluate, start_step, start_time) -> Dict:
  """The results of a run (metrics.json, written by process 0)."""
  replicas = local_replicas(state)
  params = replicas[0].params
  results = dict(
      steps=int(replicas[0].step),
      skipped_steps=int(replicas[0].skipped),
      # Every local replica's count, and whether their params agree bit for bit: a skipped step
      # is skipped on all of them or the copies drift apart.
      skipped_per_replica=[int(r.skipped) for r in replicas],
      replicas_identical=len({train.params_digest(r.params) for r in replicas}) == 1,
      resumed_from_step=start_step,
      wall_time_s=time.time() - start_time,
      params_digest=train.params_digest(params),
      # The prior's model, revision and weight hashes, where the backend knows them (SD).
      guidance_model=getattr(model.guidance, 'provenance', None),
      final=last,
      **{f'initial_{k}': v for k, v in initial.items()},
      **evaluate(model, params, int(replicas[0].step)))
  if is_writer():
    workdir_lib.keep_earlier_metrics(workdir)
    workdir_lib.write_json(os.path.join(workdir, 'metrics.json'), results)
  return results

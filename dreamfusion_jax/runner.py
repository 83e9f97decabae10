"""The training loop around the compiled update: set-up, progress, logs, checkpoints, results.

run(config, workdir) is what run_train.py calls. Only process 0 writes files; every process runs
the same loop over its local devices.
"""
import json
import os
import time
from typing import Callable, Dict, Optional

import imageio.v3 as iio
import jax
import numpy as np
import orbax.checkpoint as ocp
import tqdm

from dreamfusion_jax import guidance as guidance_lib
from dreamfusion_jax import train
from dreamfusion_jax import views

EvaluateFn = Callable[[train.Model, dict], Dict[str, float]]  # (model, params) -> metrics


def is_writer() -> bool:
  return jax.process_index() == 0


def write_json(path: str, obj) -> None:
  """Writes JSON atomically (a reader never sees half a file)."""
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def checkpoint_manager(workdir: str, config) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=config.log.max_checkpoints,
                                         save_interval_steps=1)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), 'checkpoints'),
                               options=options)


def restore_or_init(manager: ocp.CheckpointManager, model: train.Model, key) -> train.TrainState:
  """The latest checkpoint's state, or a fresh one."""
  state = train.init_state(model, key)
  step = manager.latest_step()
  if step is None:
    return state
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  return manager.restore(step, args=ocp.args.StandardRestore(target))


def scalars(metrics) -> Dict[str, float]:
  """The replicated scalar metrics of a step as floats (the first device's copy)."""
  return {k: float(np.asarray(v)[0]) for k, v in metrics.items() if k != 'views'}


class Logger:
  """TensorBoard scalars and images plus PNG previews under the workdir (process 0 only)."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.writer = None
    if is_writer():
      from tensorboardX import SummaryWriter
      self.writer = SummaryWriter(os.path.join(workdir, 'tensorboard'))
      os.makedirs(os.path.join(workdir, 'previews'), exist_ok=True)

  def scalars(self, step: int, values: Dict[str, float]) -> None:
    if self.writer:
      for k, v in values.items():
        self.writer.add_scalar(k, v, step)

  def image(self, step: int, image: np.ndarray) -> None:
    if self.writer:
      self.writer.add_image('preview', image, step, dataformats='HWC')
      iio.imwrite(os.path.join(self.workdir, 'previews', f'step_{step:06d}.png'), image)

  def close(self) -> None:
    if self.writer:
      self.writer.close()


def default_evaluate(config) -> EvaluateFn:
  """The toy world's metrics for the empirical prior; none otherwise."""
  if config.guidance.name == 'empirical':
    from dreamfusion_jax import toy
    return toy.make_evaluate(config)
  return lambda model, params: {}


def run(config, workdir: str, evaluate: Optional[EvaluateFn] = None) -> Dict:
  """Trains for config.num_steps (resuming from WORKDIR/checkpoints) and writes the results.

  Writes WORKDIR/config.json (the resolved config), checkpoints, TensorBoard events, previews and
  WORKDIR/metrics.json (final metrics, skipped steps, wall time, params_digest and whatever
  `evaluate` returns). Returns the metrics dict.
  """
  if is_writer():
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  model = train.build_model(config, guidance_lib.build(config))
  key_init, key_train = jax.random.split(jax.random.PRNGKey(config.seed))
  manager = checkpoint_manager(workdir, config)
  state = restore_or_init(manager, model, key_init)
  start_step = int(state.step)
  update = train.pmap_update(model)
  state, frozen = train.replicate(state), train.replicate(train.make_frozen(model))
  ids = train.global_replica_ids()
  preview = views.make_preview_fn(model, config.log.preview_resolution)
  logger = Logger(workdir)
  evaluate = evaluate or default_evaluate(config)
  initial = evaluate(model, train.unreplicate(state.params)) if start_step == 0 else {}

  start_time, last = time.time(), {}
  bar = tqdm.trange(start_step, config.num_steps, initial=start_step, total=config.num_steps,
                    desc='train', disable=not is_writer(), dynamic_ncols=True)
  for step in bar:
    state, metrics = update(state, frozen, key_train, ids)
    done = step + 1
    if done % config.log.every == 0 or done == config.num_steps:
      last = scalars(metrics)
      logger.scalars(done, last)
      bar.set_postfix(loss=f"{last['loss']:.3g}", sds=f"{last['loss_sds']:.3g}",
                      orient=f"{last['loss_orientation']:.3g}", t=f"{last['t']:.2f}",
                      skipped=int(last['skipped']))
    if done % config.log.preview_every == 0 or done == config.num_steps:
      logger.image(done, preview(train.unreplicate(state.params), done))
    if done % config.log.checkpoint_every == 0 or done == config.num_steps:
      manager.save(done, args=ocp.args.StandardSave(train.unreplicate(state)))
  manager.wait_until_finished()
  logger.close()

  params = train.unreplicate(state.params)
  results = dict(
      steps=int(train.unreplicate(state.step)),
      skipped_steps=int(train.unreplicate(state.skipped)),
      wall_time_s=time.time() - start_time,
      params_digest=train.params_digest(params),
      final=last,
      **{f'initial_{k}': v for k, v in initial.items()},
      **evaluate(model, params))
  if is_writer():
    write_json(os.path.join(workdir, 'metrics.json'), results)
  return results

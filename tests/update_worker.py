"""Runs the update in a fresh process (device count set by XLA_FLAGS) and writes what it saw.

  python -m tests.update_worker MODE OUT.npz [--optimizer=adam|shampoo] [--steps=N]

MODE 'replicas': one pmap'd step plus the same step recomputed on one device, replica by replica.
MODE 'digest':   N steps; the params digest (bit-identical runs compare equal).
MODE 'batch':    N steps of the paper's batch of 4 views, split over however many devices there
                 are; every view's draws (camera, t, eps) and the params.
Used by tests/test_update.py; a subprocess because the device count is fixed at JAX start-up.
"""
import argparse
import json

import jax
import numpy as np

from configs import cpu
from dreamfusion_jax import sds
from dreamfusion_jax import train
from dreamfusion_jax.guidance import standins


def tiny_config(optimizer: str):
  config = cpu.get_config()
  config.render.batch_size = 4  # One view on each of the 4 devices.
  config.render.resolution = 12
  config.render.num_samples = 12
  config.render.num_importance_samples = 6
  config.field.width = 16
  config.shading.albedo_only_steps = 0  # shading modes vary from step 0
  config.optimizer.name = optimizer
  config.optimizer.lr_init = 1e-2  # a visible first step, so the comparisons discriminate
  return config


def setup(optimizer: str):
  config = tiny_config(optimizer)
  model = train.build_model(config, standins.gaussian_guidance(config))
  state = train.init_state(model, jax.random.PRNGKey(config.seed))
  return model, state, train.make_frozen(model)


def run_replicas(optimizer: str):
  model, state, frozen = setup(optimizer)
  key = jax.random.PRNGKey(7)
  step_fn = train.pmap_update(model)
  new_state, metrics = step_fn(train.replicate(state), train.replicate(frozen), key,
                               train.global_replica_ids())
  num = jax.local_device_count()
  copies = [jax.tree.map(lambda x: np.asarray(x[i]), new_state.params) for i in range(num)]
  identical = all(train.params_digest(c) == train.params_digest(copies[0]) for c in copies)

  # The same step on one device: each replica's draws from its folded key, its gradient,
  # the mean of the gradients, one optimizer update.
  # One compiled gradient, called once per replica (op by op the worker took 74 s, now 44 s).
  grad_fn = jax.jit(jax.grad(lambda params, frozen, views, step: train.loss_fn(
      params, model, frozen, views, step), has_aux=True))
  direct_views, grads = [], []
  for r in range(num):
    views = train.draw_replica(key, state.step, r, model.config)
    g, (_, per_view) = grad_fn(state.params, frozen, views, state.step)
    grads.append(g)
    direct_views.append(per_view)
  mean_grads = jax.tree.map(lambda *g: sum(g) / num, *grads)
  lr = train.schedules.learning_rate(model.config)(state.step)
  expected, _ = train.apply_direction(state, model, mean_grads, lr)
  replica0, _ = train.apply_direction(state, model, grads[0], lr)
  gathered = jax.tree.map(lambda x: np.asarray(x[0]), metrics['views'])
  direct = jax.tree.map(lambda *v: np.stack(v), *direct_views)
  return dict(
      identical_replicas=np.array(identical),
      pmap_params=np.concatenate([np.ravel(x) for x in jax.tree.leaves(copies[0])]),
      direct_params=np.concatenate([np.ravel(x) for x in jax.tree.leaves(expected)]),
      start_params=np.concatenate([np.ravel(x) for x in jax.tree.leaves(state.params)]),
      replica0_params=np.concatenate([np.ravel(x) for x in jax.tree.leaves(replica0)]),
      **{f'pmap_{k}': v for k, v in gathered.items()},
      **{f'direct_{k}': v for k, v in direct.items()})


def run_digest(optimizer: str, steps: int, nan_step: int):
  model, state, frozen = setup(optimizer)
  model.config.debug.nan_step = nan_step
  step_fn = train.pmap_update(model)
  state, frozen = train.replicate(state), train.replicate(frozen)
  key, ids = jax.random.PRNGKey(model.config.seed), train.global_replica_ids()
  finite = []
  for _ in range(steps):
    state, metrics = step_fn(state, frozen, key, ids)
    finite.append(bool(metrics['finite'][0]))
  params = train.unreplicate(state.params)
  return dict(digest=np.array(train.params_digest(params)), finite=np.array(finite),
              skipped=np.asarray(state.skipped[0]), step=np.asarray(state.step[0]))


def run_batch(optimizer: str, steps: int):
  """render.batch_size = 4 over the devices (1 x 4 or 4 x 1): the draws of every view as the
  update makes them (train.draw_replica per replica), and the params after `steps` steps."""
  model, state, frozen = setup(optimizer)
  config = model.config
  num, per_device = jax.local_device_count(), train.views_per_device(config)
  key = jax.random.PRNGKey(config.seed)
  draws = [train.draw_replica(key, 0, r, config) for r in range(num)]
  views = jax.tree.map(lambda *v: np.concatenate(v), *draws)  # (4, ...) in global view order
  res = config.render.resolution  # The Gaussian stand-in's z is the render itself.
  shape = (config.render.batch_size, res, res, 3)
  t, eps = sds.draw_noise(model.guidance.schedule, views.sds_key, shape, config.guidance.t_range)
  start = np.concatenate([np.ravel(x) for x in jax.tree.leaves(state.params)])
  step_fn = train.pmap_update(model)
  state, frozen = train.replicate(state), train.replicate(frozen)
  gathered = []
  for _ in range(steps):
    state, metrics = step_fn(state, frozen, key, train.global_replica_ids())
    gathered.append(jax.tree.map(lambda x: np.asarray(x[0]).reshape(-1), metrics['views']))
  params = train.unreplicate(state.params)
  return dict(per_device=np.array(per_device), start_params=start, t=np.asarray(t), eps=np.asarray(eps),
              origin=np.asarray(views.camera.origin), light=np.asarray(views.light_position),
              params=np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)]),
              **{f'update_{k}': np.stack([g[k] for g in gathered]) for k in gathered[0]})


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('mode', choices=['replicas', 'digest', 'batch'])
  parser.add_argument('out')
  parser.add_argument('--optimizer', default='adam')
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--nan_step', type=int, default=-1)
  args = parser.parse_args()
  if args.mode == 'replicas':
    result = run_replicas(args.optimizer)
  elif args.mode == 'batch':
    result = run_batch(args.optimizer, args.steps)
  else:
    result = run_digest(args.optimizer, args.steps, args.nan_step)
  np.savez(args.out, **result)
  print(json.dumps({'devices': jax.local_device_count()}))


if __name__ == '__main__':
  main()

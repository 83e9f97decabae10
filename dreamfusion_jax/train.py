"""The training state and the ONE compiled, device-mapped update (design.md §2; paper Fig. 8).

update(state, frozen, key, replica_id) -> (state, metrics), jax.pmap'd over local devices:

  1. Randomness: the step key is folded with the step, then with the GLOBAL view index (replica
     index x views per device + the view's place on its device), so view v of a step draws the
     same camera, light, shading mode, t and eps whatever the device/process layout: one device
     rendering the batch of 4 and four devices rendering one each take the same step.
  2. Each replica renders its views_per_device(config) = render.batch_size / device count views
     and takes the gradient of SDS + orientation + opacity w.r.t. the NeRF and background
     params.
  3. Gradients are all-gathered over the replica axis and averaged in replica order: the same
     (num_replicas, ...) array and the same reduction for any layout, so 1 process x 4 devices
     and 2 processes x 2 devices give the same bits.
  4. A step whose reduced gradients are not finite is skipped on every replica and counted.
  5. params <- params - lr(step) * direction, with the direction from Shampoo or Adam (optim.py).
"""
import hashlib
from typing import Any, NamedTuple, Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import field as field_lib
from dreamfusion_jax import losses
from dreamfusion_jax import optim
from dreamfusion_jax import prompts
from dreamfusion_jax import render
from dreamfusion_jax import schedules
from dreamfusion_jax import sds
from dreamfusion_jax.errors import SetupError

AXIS = 'replicas'  # The pmap axis name.


@flax.struct.dataclass
class TrainState:
  step: jnp.ndarray  # () int32, steps taken (skipped ones included).
  params: Any  # {'nerf': ..., 'background': ...}
  opt_state: Any  # The direction transform's state (optim.py).
  skipped: jnp.ndarray  # () int32, steps skipped because the gradients were not finite.


@flax.struct.dataclass
class Frozen:
  """What the update reads but never changes, passed in as arrays (replicated once)."""
  guidance_params: Any  # The prior's weights (guidance/__init__.py).
  cond_table: jnp.ndarray  # (P, ...) embeddings of prompts.view_prompts(prompt, view_mode).
  uncond_table: jnp.ndarray  # (P, ...) unconditional (or per-view negative) embedding per row.
  neg_table: Any = None  # (P, K, ...) Perp-Neg: each row's K negative embeddings; else None.
  neg_weights: Any = None  # (P, K) Perp-Neg: their weights (prompts.negative_table); else None.


class Model(NamedTuple):
  """The static pieces the update closes over (modules, backend, optimizer, config)."""
  config: Any
  nerf: field_lib.NeRFMLP
  background: field_lib.BackgroundMLP
  guidance: Any
  optimizer: optax.GradientTransformation


def build_model(config, guidance) -> Model:
  nerf, background = field_lib.build(config)
  return Model(config, nerf, background, guidance, optim.direction(config))


def init_state(model: Model, key) -> TrainState:
  """Fresh params and optimizer state from a key."""
  key_nerf, key_bg = jax.random.split(key)
  variance = jnp.float32(model.config.schedule.lambda_sigma_start)
  params = {
      'nerf': model.nerf.init(key_nerf, jnp.zeros((1, 3)), variance)['params'],
      'background': model.background.init(key_bg, jnp.zeros((1, 3)))['params'],
  }
  return TrainState(step=jnp.int32(0), params=params, opt_state=model.optimizer.init(params),
                    skipped=jnp.int32(0))


def make_frozen(model: Model) -> Frozen:
  """Embeds every view-prompt variant and the unconditional prompt once, before the loop.

  prompts.negatives picks the unconditional side: 'none', config.negative_prompt for every view;
  'views', each row's negatives mixed by weight (rows without negatives keep negative_prompt);
  'perp_neg', negative_prompt, plus each row's negatives as a (P, K, ...) table for Perp-Neg.
  """
  config, guidance = model.config, model.guidance
  cond = jnp.asarray(guidance.embed(prompts.view_prompts(config.prompt, config.prompts.view_mode)))
  uncond = jnp.broadcast_to(jnp.asarray(guidance.embed([config.negative_prompt])), cond.shape)
  frozen = Frozen(guidance_params=guidance.params, cond_table=cond, uncond_table=uncond)
  if config.prompts.negatives == 'none':
    return frozen
  rows, weights = prompts.negative_table(config.prompts)
  if config.prompts.negatives == 'perp_neg':
    return frozen.replace(neg_table=cond[rows], neg_weights=jnp.asarray(weights))
  total = weights.sum(axis=1)
  mixed = jnp.einsum('pk,pk...->p...', weights / np.maximum(total, 1e-12)[:, None], cond[rows])
  has = (total > 0).reshape((-1,) + (1,) * (cond.ndim - 1))
  return frozen.replace(uncond_table=jnp.where(has, mixed, uncond))


class ViewDraw(NamedTuple):
  """One view's random draws. Fields stacked over views under vmap."""
  camera: camera_lib.Camera
  light_position: jnp.ndarray  # (3,)
  shading_mode: jnp.ndarray  # () int32, render.ALBEDO / LAMBERTIAN / TEXTURELESS
  render_key: jnp.ndarray  # sample jitter
  sds_key: jnp.ndarray  # t and eps of this view's SDS draw (sds.draw_noise)
  background: jnp.ndarray  # (3,) this view's solid background (field.background='random')


def draw_view(key, step, config) -> ViewDraw:
  """Camera, light, shading mode, render and SDS keys of one view [P §3.2, A.2].

  `key` is the view's own key (view_key). The two splits are those a replica of one view made
  before the batch was global, so runs of one view per step keep their bits.
  """
  key_views, key_sds = jax.random.split(key)
  k_cam, k_light, k_mode, k_render = jax.random.split(jax.random.split(key_views, 1)[0], 4)
  cam = camera_lib.sample_camera(k_cam, config.camera)
  light = camera_lib.sample_light(k_light, cam.origin, config.light)
  mode = jax.random.choice(k_mode, 3, p=schedules.shading_probs(step, config))
  return ViewDraw(cam, light, mode.astype(jnp.int32), k_render, key_sds,
                  _draw_background(key, config))


def _draw_background(key, config) -> jnp.ndarray:
  """A view's solid background (3,): one of toy.backgrounds, uniformly, for
  field.background='random' (white otherwise, unused). Its own fold of the view's key, so the
  view's other draws keep their bits whatever the background."""
  if config.field.background != 'random':
    return jnp.ones((3,), jnp.float32)
  levels = jnp.asarray(config.toy.backgrounds, jnp.float32)
  level = levels[jax.random.randint(jax.random.fold_in(key, 0xB6), (), 0, levels.shape[0])]
  return jnp.full((3,), level, jnp.float32)


def needs_normals(config) -> bool:
  """Whether a training render reads its normals: shaded renders, or an orientation-loss weight.

  With ablation.shading False every render is albedo, so only the orientation loss would read
  them; with its weights at 0 the step skips the density gradient's second backward pass.
  """
  s = config.schedule
  return bool(config.ablation.shading or s.orientation_start > 0 or s.orientation_end > 0)


def views_per_device(config) -> int:
  """render.batch_size (views per step, global) over all processes' devices.

  Raises SetupError when the batch does not split evenly.
  """
  num_devices = jax.device_count()
  batch = config.render.batch_size
  if batch % num_devices:
    raise SetupError(f'config.render.batch_size={batch} does not split over {num_devices} '
                     f'devices: use a multiple of {num_devices}')
  return batch // num_devices


def view_key(key, step, view_id):
  """The step key folded with the step, then with the global view index."""
  return jax.random.fold_in(jax.random.fold_in(key, step), view_id)


def draw_replica(key, step, replica_id, config, num_views: Optional[int] = None) -> ViewDraw:
  """All of one replica's randomness for a step: its num_views views (views_per_device by
  default), global views replica_id * num_views ... + num_views - 1. Fields (num_views, ...)."""
  num_views = views_per_device(config) if num_views is None else num_views
  ids = replica_id * num_views + jnp.arange(num_views)
  return jax.vmap(lambda v: draw_view(view_key(key, step, v), step, config))(ids)


def render_views(params, model: Model, views: ViewDraw, step):
  """The training renders of a replica's views at `step` (its IPE variance, render settings).

  Returns render.render_camera's outputs stacked over views: rgb (V, H, W, 3), acc and
  orientation (V, H, W), ...
  """
  config = model.config
  field_fn, background_fn = field_lib.bind(model.nerf, model.background, params)
  variance = field_lib.ipe_variance(schedules.lambda_sigma(step, config),
                                    config.field.ipe_covariance)
  settings = render.RenderSettings.from_config(config)._replace(normals=needs_normals(config))
  res = config.render.resolution

  def render_one(view: ViewDraw):
    bg_fn = background_fn
    if config.field.background == 'random':  # This view's solid background (toy.backgrounds).
      bg_fn = lambda d: jnp.broadcast_to(view.background, d.shape)
    return render.render_camera(field_fn, bg_fn, view.camera, res, res, view.render_key,
                                variance=variance, light_position=view.light_position,
                                shading_mode=view.shading_mode, settings=settings)

  return jax.vmap(render_one)(views)


def loss_fn(params, model: Model, frozen: Frozen, views: ViewDraw, step):
  """SDS + weighted regularizers of one replica's views.

  Returns: loss (), and (metrics: dict of scalars, per_view: dict of (num views,) draws).
  """
  config = model.config
  out = render_views(params, model, views, step)
  weights = jax.vmap(lambda c: prompts.view_weights(c.elevation_deg, c.azimuth_deg,
                                                    config.prompts))(views.camera)
  cond = jnp.tensordot(weights, frozen.cond_table, axes=1)
  uncond = jnp.tensordot(weights, frozen.uncond_table, axes=1)
  negatives = {}
  if frozen.neg_table is not None:  # Perp-Neg; one-hot view weights select the view's negatives.
    negatives = dict(neg_emb=jnp.tensordot(weights, frozen.neg_table, axes=1),
                     neg_weights=weights @ frozen.neg_weights)
  g = config.guidance
  loss_sds, sds_aux = sds.sds_loss(model.guidance, frozen.guidance_params, out['rgb'], cond, uncond,
                                   views.sds_key, omega=g.scale, weighting=g.weighting,
                                   t_range=tuple(g.t_range), **negatives)
  num_views = views.render_key.shape[0]
  loss_orient = jnp.mean(losses.orientation_loss(out['orientation'].reshape(num_views, -1)))
  loss_opacity = jnp.mean(losses.opacity_loss(out['acc'].reshape(num_views, -1),
                                              config.loss.opacity_eps))
  w_orient = schedules.orientation_weight(step, config)
  loss = loss_sds + w_orient * loss_orient + config.loss.opacity_weight * loss_opacity
  metrics = dict(loss=loss, loss_sds=loss_sds, loss_orientation=loss_orient,
                 loss_opacity=loss_opacity, orientation_weight=w_orient,
                 t=jnp.mean(sds_aux['t'].astype(jnp.float32)),
                 sds_grad_norm=jnp.mean(sds_aux['grad_norm']), acc_mean=jnp.mean(out['acc']))
  per_view = dict(t=sds_aux['t'], elevation_deg=views.camera.elevation_deg,
                  azimuth_deg=views.camera.azimuth_deg, shading_mode=views.shading_mode)
  return loss, (metrics, per_view)


def mean_over_replicas(tree):
  """Layout-independent mean: gather every replica's value, then reduce in replica order."""
  return jax.tree.map(lambda g: jnp.mean(jax.lax.all_gather(g, AXIS), axis=0), tree)


def all_finite(tree) -> jnp.ndarray:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def apply_direction(state: TrainState, model: Model, grads, lr):
  """params - lr * direction, the direction from the optimizer. Returns (params, opt_state)."""
  direction, opt_state = model.optimizer.update(grads, state.opt_state, state.params)
  params = jax.tree.map(lambda p, d: p - lr * d, state.params, direction)
  return params, opt_state


def make_update(model: Model):
  """The per-replica update; wrap it with pmap_update (or call inside a pmap with axis AXIS).

  Returns update(state, frozen, key, replica_id) -> (state, metrics): metrics are scalars averaged
  over replicas, plus metrics['views'], every replica's draws (t, elevation, azimuth, shading
  mode), each (num_replicas, views_per_device(config)).
  """
  config = model.config
  lr_fn = schedules.learning_rate(config)
  num_views = views_per_device(config)

  def update(state: TrainState, frozen: Frozen, key, replica_id):
    step = state.step
    views = draw_replica(key, step, replica_id, config, num_views)
    grads, (metrics, per_view) = jax.grad(loss_fn, has_aux=True)(state.params, model, frozen,
                                                                 views, step)
    if config.debug.nan_step >= 0:
      nan = jnp.where(step == config.debug.nan_step, jnp.nan, 0.0)
      grads = jax.tree.map(lambda g: g + nan, grads)
    grads = mean_over_replicas(grads)
    finite = all_finite(grads)
    lr = lr_fn(step)
    new_params, new_opt_state = apply_direction(state, model, grads, lr)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    new_state = TrainState(step=step + 1, params=keep(new_params, state.params),
                           opt_state=keep(new_opt_state, state.opt_state),
                           skipped=state.skipped + (1 - finite.astype(jnp.int32)))
    metrics = jax.lax.pmean(metrics, AXIS)
    metrics.update(lr=lr, grad_norm=optax.global_norm(grads), skipped=new_state.skipped,
                   finite=finite, views=jax.lax.all_gather(per_view, AXIS))
    return new_state, metrics

  return update


def pmap_update(model: Model):
  """update pmap'd over local devices: (state, frozen replicated; key shared; replica ids)."""
  return jax.pmap(make_update(model), axis_name=AXIS, in_axes=(0, 0, None, 0),
                  donate_argnums=(0,))


def global_replica_ids() -> jnp.ndarray:
  """(local_device_count,) global replica index of each local device."""
  n = jax.local_device_count()
  return jax.process_index() * n + jnp.arange(n, dtype=jnp.int32)


def replicate(tree):
  """Copies a pytree onto every local device, with the leading device axis pmap expects.

  Mapped over the update's axis name: the copies then carry the same sharding as the update's
  outputs, and the update compiles once instead of again at its second call.
  """
  n = jax.local_device_count()
  return jax.pmap(lambda _, x: x, in_axes=(0, None), axis_name=AXIS)(jnp.arange(n), tree)


def params_digest(params) -> str:
  """sha256 over the params' bytes in tree order: two runs compare exactly."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(params):
    digest.update(np.asarray(leaf).tobytes())
  return digest.hexdigest()


def unreplicate(tree):
  """The first local device's copy of a replicated pytree."""
  return jax.tree.map(lambda x: x[0], tree)

"""Wall time of one update, split into its parts (not a test: it prints figures and ratios).

  python -m benchmarks.update_speed                 # paper MLP at 64x64, and the CPU config
  python -m benchmarks.update_speed --configs=cpu --repeats=5
  python -m benchmarks.update_speed --unet          # also time a full-size SD 2.1-base UNet

For each config it reports, on one device:
  compile     time to compile the pmap'd update (first call minus a steady call)
  update      one whole update: draws, render + backward, guidance, gradient mean, optimizer
  render+bwd  the gradient of the render (with normals) w.r.t. the params, given a cotangent
  guidance    one guidance call on the stacked [uncond, cond] batch (the exact Gaussian prior
              costs ~nothing; --unet times a randomly initialised full-size Stable Diffusion
              2.1-base UNet on 64x64x4 latents, the prior's real cost)
  samples/s   ray samples (stratified + importance) through render+bwd per second
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from configs import cpu
from dreamfusion_jax import defaults, field as field_lib
from dreamfusion_jax import render, schedules, sds, train
from dreamfusion_jax.guidance import standins

CONFIGS = {'paper': defaults.get_config, 'cpu': cpu.get_config}


def timed(fn, repeats):
  """(first call seconds, median of `repeats` further calls) with results blocked on."""
  start = time.perf_counter()
  jax.block_until_ready(fn())
  first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return first, float(np.median(times))


def bench_update(config, repeats, backend=None):
  """(state, model, compile s, steady update s) on one device; the exact Gaussian stand-in
  guidance unless a backend is given."""
  model = train.build_model(config, backend or standins.gaussian_guidance(config))
  state = train.init_state(model, jax.random.PRNGKey(0))
  frozen = train.replicate(train.make_frozen(model))
  step_fn = train.pmap_update(model)
  ids, key = train.global_replica_ids(), jax.random.PRNGKey(1)
  box = {'state': train.replicate(state)}

  def one_update():
    box['state'], metrics = step_fn(box['state'], frozen, key, ids)
    return metrics['loss']

  first, steady = timed(one_update, repeats)
  return state, model, first - steady, steady


def bench_render_backward(config, state, model, repeats):
  views = train.draw_replica(jax.random.PRNGKey(2), 2000, 0, config, config.render.batch_size)
  settings = render.RenderSettings.from_config(config)
  res = config.render.resolution
  variance = jnp.float32(schedules.lambda_sigma(0, config))

  @jax.jit
  def grad_of_render(params, views):
    def loss(params):
      field_fn, bg_fn = field_lib.bind(model.nerf, model.background, params)
      out = jax.vmap(lambda v: render.render_camera(
          field_fn, bg_fn, v.camera, res, res, v.render_key, variance=variance,
          light_position=v.light_position, shading_mode=v.shading_mode, settings=settings))(views)
      return jnp.sum(out['rgb']) + jnp.sum(out['orientation']) + jnp.sum(out['acc'])
    return jax.grad(loss)(params)

  _, steady = timed(lambda: grad_of_render(state.params, views), repeats)
  samples = (config.render.batch_size * res * res *
             (config.render.num_samples + config.render.num_importance_samples))
  return steady, samples / steady


def sd21_unet_guidance(views: int):
  """A full-size SD 2.1-base UNet with random weights (the config of
  stabilityai/stable-diffusion-2-1-base/unet/config.json), as a guidance-like eps call."""
  from diffusers import FlaxUNet2DConditionModel
  unet = FlaxUNet2DConditionModel(
      sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
      block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
      cross_attention_dim=1024, use_linear_projection=True,
      down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',),
      up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3)
  params = unet.init_weights(jax.random.PRNGKey(0))
  z = jnp.zeros((2 * views, 4, 64, 64))
  t = jnp.full((2 * views,), 500, jnp.int32)
  emb = jnp.zeros((2 * views, 77, 1024))
  return jax.jit(lambda p, z, t, e: unet.apply({'params': p}, z, t, e).sample), (params, z, t, emb)


def bench_guidance(config, model, repeats, unet: bool):
  views = config.render.batch_size
  if unet:
    fn, args = sd21_unet_guidance(views)
    return timed(lambda: fn(*args), repeats)[1]
  guidance, frozen = model.guidance, train.make_frozen(model)
  res = config.render.resolution
  z = jnp.zeros((views, res, res, 3))
  t = jnp.full((views,), 0.5)
  cond = jnp.tile(frozen.cond_table[1:2], (views, 1))
  uncond = jnp.tile(frozen.uncond_table[0:1], (views, 1))
  fn = jax.jit(lambda z, t: sds.guided_eps(guidance, frozen.guidance_params, z, t, cond, uncond,
                                           config.guidance.scale))
  return timed(lambda: fn(z, t), repeats)[1]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--configs', default='paper,cpu')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--unet', action='store_true', help='time a full-size SD UNet call')
  parser.add_argument('--optimizer', default='shampoo', choices=['shampoo', 'adam'])
  args = parser.parse_args()
  print(f'devices: {jax.devices()}  (one device used)')
  print(f"{'config':>7} {'res':>4} {'MLP':>7} {'samples':>8} {'compile s':>10} {'update s':>9} "
        f"{'render+bwd s':>13} {'guidance s':>11} {'render share':>13} {'samples/s':>10}")
  for name in args.configs.split(','):
    config = CONFIGS[name]()
    config.optimizer.name = args.optimizer
    state, model, compile_s, update_s = bench_update(config, args.repeats)
    render_s, samples_per_s = bench_render_backward(config, state, model, args.repeats)
    guidance_s = bench_guidance(config, model, args.repeats, args.unet)
    mlp = f'{config.field.num_blocks}x{config.field.width}'
    samples = f'{config.render.num_samples}+{config.render.num_importance_samples}'
    print(f'{name:>7} {config.render.resolution:>4} {mlp:>7} {samples:>8} {compile_s:>10.1f} '
          f'{update_s:>9.3f} {render_s:>13.3f} {guidance_s:>11.3f} '
          f'{render_s / (render_s + guidance_s):>13.2f} {samples_per_s:>10.3g}', flush=True)


if __name__ == '__main__':
  main()

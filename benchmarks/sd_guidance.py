"""The cost of Stable Diffusion guidance in the update (not a test: it prints figures and ratios).

  python -m benchmarks.sd_guidance                                   # CPU: stand-in vs tiny SD
  python -m benchmarks.sd_guidance --backends=full --config=paper --dtype=bfloat16   # a GPU/TPU

Backends, all through the same compiled update (train.pmap_update) on one device:
  standin  the exact Gaussian prior at the render resolution (guidance costs ~nothing)
  tiny     SD 2.1-base's architecture with tiny widths (tests/random_sd.py), random weights
  full     SD 2.1-base's full-size UNet, VAE encoder and text encoder with RANDOM weights: the
           real model's compute and memory, no download

For each it reports: compile (first update minus a steady one), update (a whole step, steady),
the split render+bwd / VAE encode+bwd / UNet (each jitted alone), and peak memory (the device's
peak_bytes_in_use where the backend reports it, e.g. GPU; else the process's peak RSS, which
includes Python and the weights). The render is the config's (--config), the VAE input is
--vae_resolution (512 as SD 2.1-base; the paper's renders are 64x64).
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp

from benchmarks.update_speed import bench_render_backward, bench_update, timed
from configs import cpu
from dreamfusion_jax import defaults
from dreamfusion_jax.guidance import random_sd, standins

CONFIGS = {'paper': defaults.get_config, 'cpu': cpu.get_config}


def build_backend(name, config, dtype, tmp):
  if name == 'standin':
    return standins.gaussian_guidance(config)
  return random_sd.random_backend(tiny=name == 'tiny', dtype=dtype,
                                    resolution=config.guidance.stable_diffusion.vae_resolution,
                                    tokenizer_dir=tmp)


def peak_memory_mb() -> float:
  stats = jax.local_devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return stats['peak_bytes_in_use'] / 2 ** 20
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10  # Linux: KiB.


def bench_vae_and_unet(config, backend, repeats):
  """(VAE encode + backward s, UNet call s) on a batch of render.batch_size renders (one device)."""
  if not hasattr(backend, 'vae'):
    return float('nan'), float('nan')
  views, res = config.render.batch_size, config.render.resolution
  x = jax.random.uniform(jax.random.PRNGKey(0), (views, res, res, 3))
  params = backend.params
  encode_grad = jax.jit(jax.grad(lambda x: jnp.sum(backend.encode(params, x))))
  vae_s = timed(lambda: encode_grad(x), repeats)[1]
  z = backend.encode(params, x)
  emb = jnp.asarray(backend.embed([config.prompt, '']))
  emb = jnp.repeat(emb, views, axis=0)
  zz, tt = jnp.concatenate([z, z]), jnp.full((2 * views,), 500, jnp.int32)
  eps = jax.jit(backend.eps)
  unet_s = timed(lambda: eps(params, zz, tt, emb), repeats)[1]
  return vae_s, unet_s


def measure(name, args):
  """The figures of one backend (run in its own process, so peak memory is its own)."""
  config = CONFIGS[args.config]()
  config.optimizer.name = args.optimizer
  config.guidance.stable_diffusion.vae_resolution = args.vae_resolution
  with tempfile.TemporaryDirectory() as tmp:
    backend = build_backend(name, config, args.dtype, tmp)
    state, model, compile_s, update_s = bench_update(config, args.repeats, backend)
    render_s, _ = bench_render_backward(config, state, model, args.repeats)
    vae_s, unet_s = bench_vae_and_unet(config, backend, args.repeats)
  return dict(compile_s=compile_s, update_s=update_s, render_s=render_s, vae_s=vae_s,
              unet_s=unet_s, peak_mb=peak_memory_mb())


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--backends', default='standin,tiny')
  parser.add_argument('--config', default='cpu', choices=sorted(CONFIGS))
  parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
  parser.add_argument('--vae_resolution', type=int, default=512)
  parser.add_argument('--optimizer', default='adam', choices=['shampoo', 'adam'])
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(measure(args.backends, args)))
    return
  print(f'device: {jax.devices()[0]}  config: {args.config}  dtype: {args.dtype}  '
        f'VAE input: {args.vae_resolution}^2  optimizer: {args.optimizer}')
  print(f"{'backend':>8} {'compile s':>10} {'update s':>9} {'steps/s':>8} {'render+bwd s':>13} "
        f"{'VAE+bwd s':>10} {'UNet s':>8} {'peak MB':>9} {'vs first':>9}")
  baseline = None
  for name in args.backends.split(','):
    argv = [a for a in sys.argv[1:] if not a.startswith('--backends')]
    out = subprocess.run([sys.executable, '-m', 'benchmarks.sd_guidance', '--child',
                          f'--backends={name}', *argv], capture_output=True, text=True)
    if out.returncode:
      print(f'{name:>8} failed:\n{out.stderr[-2000:]}')
      continue
    r = json.loads(out.stdout.strip().splitlines()[-1])
    baseline = baseline or r['update_s']
    print(f"{name:>8} {r['compile_s']:>10.1f} {r['update_s']:>9.3f} {1 / r['update_s']:>8.2f} "
          f"{r['render_s']:>13.3f} {r['vae_s']:>10.3f} {r['unet_s']:>8.3f} {r['peak_mb']:>9.0f} "
          f"{r['update_s'] / baseline:>8.1f}x", flush=True)


if __name__ == '__main__':
  main()

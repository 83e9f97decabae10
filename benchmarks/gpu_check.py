"""One command for a lent GPU: the hamburger run's speed, memory, finiteness and determinism.

  pip install -e . 'jax[cuda12]==0.10.2'
  python -m benchmarks.gpu_check                   # a GPU: SD 2.1-base full size, random weights
  python -m benchmarks.gpu_check --tiny --steps=5 --det_steps=2   # CPU smoke check, ~12 min

configs/hamburger.py's config (the paper's sizes: 64x64 renders, 64+32 samples per ray, a 5x128
MLP, Shampoo; the VAE input 512^2) with guidance.stable_diffusion.dtype bfloat16, and Stable
Diffusion 2.1-base's full-size UNet, VAE encoder and text encoder with RANDOM weights
(guidance/random_sd.py's random_backend): the real model's compute and memory, no download. Each part below runs in its
own child process (so peak memory is its own, and the parent never touches the GPU):

  timing       for each --batches (config.render.batch_size, views per step; default 4 and 1):
               compile s, a steady update s, steps/s, the split render+bwd / VAE encode+bwd /
               UNet (each jitted alone, benchmarks/sd_guidance.py) and peak device memory,
               printed as a markdown table for the README
  finite       --steps (50) of the real update (train.pmap_update, batch 4) from a fresh state:
               every step's metrics['finite'], the skipped count and the final loss; the exit
               status is non-zero if any step was not finite
  determinism  two runs of --det_steps (5) steps with --xla_gpu_deterministic_ops=true appended
               to XLA_FLAGS, and their train.params_digest; --determinism=both adds a pair
               without the flag, to show whether it matters. Each run compiles for itself (no
               compilation cache), as two training runs would, so autotuning may differ

Expected total on an H200: ~6-8 minutes (five children, each building the random SD weights
and compiling the update once; estimated, not yet measured). Where one command may run for at
most 10 minutes, split it: `--skip=determinism`, then `--skip=timing,finite`.
XLA ignores the GPU flag on CPU (checked on jax 0.10.2), so it is passed on every backend.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PARTS = ('timing', 'finite', 'determinism')
DETERMINISTIC_FLAG = '--xla_gpu_deterministic_ops=true'


def make_config(tiny: bool, batch: int):
  """hamburger.py at the paper's sizes (bfloat16 SD), or at configs/cpu.py's sizes (--tiny)."""
  from configs import cpu, hamburger
  c = hamburger.get_config()
  c.render.batch_size = batch
  c.guidance.stable_diffusion.dtype = 'bfloat16'
  if tiny:
    small = cpu.get_config()
    # hamburger.py's regularizer weights are per ray, tied to the resolution: they follow it.
    c.render.resolution = small.render.resolution
    c.render.num_samples = small.render.num_samples
    c.render.num_importance_samples = small.render.num_importance_samples
    c.field.width, c.field.num_blocks = small.field.width, small.field.num_blocks
    c.field.bg_width = small.field.bg_width
    sd = c.guidance.stable_diffusion
    sd.dtype, sd.vae_resolution = 'float32', 64  # The tiny pipeline's size.
  return c


def device_info():
  import jax
  device = jax.devices()[0]
  return dict(device=str(device), kind=device.device_kind, backend=jax.default_backend(),
              devices=jax.device_count(), jax=jax.__version__)


def child_timing(args, tmp):
  """One batch size's figures (sd_guidance.measure, on hamburger.py's config)."""
  from benchmarks import sd_guidance
  from benchmarks.update_speed import bench_render_backward, bench_update
  config = make_config(args.tiny, args.batch)
  backend = sd_guidance.build_backend('tiny' if args.tiny else 'full', config,
                                      config.guidance.stable_diffusion.dtype, tmp)
  state, model, compile_s, update_s = bench_update(config, args.repeats, backend)
  render_s, _ = bench_render_backward(config, state, model, args.repeats)
  vae_s, unet_s = sd_guidance.bench_vae_and_unet(config, backend, args.repeats)
  return dict(batch=args.batch, compile_s=compile_s, update_s=update_s, steps_per_s=1 / update_s,
              render_s=render_s, vae_s=vae_s, unet_s=unet_s,
              peak_mb=sd_guidance.peak_memory_mb())


def child_run(args, tmp):
  """args.steps real updates from a fresh state: per-step finite and loss, the params digest."""
  import jax
  import numpy as np
  from benchmarks import sd_guidance
  from dreamfusion_jax import train
  config = make_config(args.tiny, args.batch)
  backend = sd_guidance.build_backend('tiny' if args.tiny else 'full', config,
                                      config.guidance.stable_diffusion.dtype, tmp)
  model = train.build_model(config, backend)
  state = train.replicate(train.init_state(model, jax.random.PRNGKey(0)))
  frozen = train.replicate(train.make_frozen(model))
  step_fn = train.pmap_update(model)
  ids, key = train.global_replica_ids(), jax.random.PRNGKey(1)
  finite, losses, start = [], [], time.perf_counter()
  for _ in range(args.steps):
    state, metrics = step_fn(state, frozen, key, ids)
    # Fetched every step: a non-finite step is named, and the loop cannot run ahead of the GPU.
    finite.append(bool(np.all(jax.device_get(metrics['finite']))))
    losses.append(float(np.asarray(jax.device_get(metrics['loss']))[0]))
  seconds = time.perf_counter() - start
  state = train.unreplicate(state)
  return dict(batch=args.batch, steps=args.steps, finite=finite, losses=losses,
              skipped=int(state.skipped), final_loss=losses[-1] if losses else None,
              seconds=seconds, digest=train.params_digest(state.params),
              peak_mb=sd_guidance.peak_memory_mb())


def run_child(args, kind, batch, steps, env):
  """Runs one part in a fresh process; returns its JSON (with wall_s), or None if it failed."""
  cmd = [sys.executable, '-m', 'benchmarks.gpu_check', f'--child={kind}', f'--batch={batch}',
         f'--steps={steps}', f'--repeats={args.repeats}'] + (['--tiny'] if args.tiny else [])
  start = time.perf_counter()
  out = subprocess.run(cmd, capture_output=True, text=True, env=env)
  wall_s = time.perf_counter() - start
  if out.returncode:
    print(f'  {kind} (batch {batch}) failed after {wall_s:.0f} s:\n{out.stderr[-3000:]}',
          flush=True)
    return None
  result = json.loads(out.stdout.strip().splitlines()[-1])
  result['wall_s'] = wall_s
  return result


def xla_flags(deterministic: bool) -> str:
  """The caller's XLA_FLAGS with the deterministic-ops flag appended, or without it."""
  flags = [f for f in os.environ.get('XLA_FLAGS', '').split() if f != DETERMINISTIC_FLAG]
  return ' '.join(flags + ([DETERMINISTIC_FLAG] if deterministic else []))


def timing_table(rows):
  lines = ['| batch | compile s | update s | steps/s | render+bwd s | VAE+bwd s | UNet s | '
           'peak MB |', '|---:|---:|---:|---:|---:|---:|---:|---:|']
  for r in rows:
    lines.append(f"| {r['batch']} | {r['compile_s']:.1f} | {r['update_s']:.3f} | "
                 f"{r['steps_per_s']:.2f} | {r['render_s']:.3f} | {r['vae_s']:.3f} | "
                 f"{r['unet_s']:.3f} | {r['peak_mb']:.0f} |")
  return '\n'.join(lines)


def part_timing(args, env, results):
  print('## timing', flush=True)
  rows = []
  for batch in args.batches:
    r = run_child(args, 'timing', batch, 0, env)
    if r is None:
      return False
    results.setdefault('meta', r.pop('info'))
    rows.append(r)
    print(f"  batch {batch}: {r['update_s']:.3f} s/step ({r['wall_s']:.0f} s wall)", flush=True)
  results['timing'] = rows
  print(timing_table(rows), flush=True)
  return True


def part_finite(args, env, results):
  print(f'## finite: {args.steps} steps at batch 4 from a fresh state', flush=True)
  r = run_child(args, 'run', 4, args.steps, env)
  if r is None:
    return False
  results.setdefault('meta', r.pop('info'))
  results['finite'] = r
  bad = [i for i, ok in enumerate(r['finite']) if not ok]
  print(f"  finite: {len(r['finite']) - len(bad)}/{len(r['finite'])} steps"
        f"{'' if not bad else f' (not finite: steps {bad})'}, skipped {r['skipped']}, "
        f"final loss {r['final_loss']:.6g}, {r['seconds'] / max(r['steps'], 1):.3f} s/step "
        f"incl. compile, peak {r['peak_mb']:.0f} MB", flush=True)
  return not bad and r['skipped'] == 0


def part_determinism(args, results):
  """Two independent runs per setting; equal digests = the same bits, run to run."""
  settings = [('with_flag', True)] + ([('without_flag', False)] if args.determinism == 'both'
                                      else [])
  results['determinism'] = {}
  ok = True
  for name, deterministic in settings:
    flags = xla_flags(deterministic)
    print(f'## determinism, {name}: 2 runs x {args.det_steps} steps at batch 4, '
          f'XLA_FLAGS={flags!r}', flush=True)
    env = dict(os.environ, XLA_FLAGS=flags)
    env.pop('JAX_COMPILATION_CACHE_DIR', None)  # Each run compiles (and autotunes) for itself.
    runs = [run_child(args, 'run', 4, args.det_steps, env) for _ in range(2)]
    if None in runs:
      ok = False
      continue
    digests = [r['digest'] for r in runs]
    for r in runs:
      results.setdefault('meta', r.pop('info'))
    results['determinism'][name] = dict(xla_flags=flags, digests=digests,
                                        equal=digests[0] == digests[1], runs=runs)
    for d in digests:
      print(f'  params_digest {d}', flush=True)
    print(f"  {'EQUAL' if digests[0] == digests[1] else 'NOT EQUAL'}", flush=True)
  return ok


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--tiny', action='store_true',
                      help="tiny SD widths and configs/cpu.py's sizes: a CPU smoke check")
  parser.add_argument('--steps', type=int, default=50, help='steps of the finite check')
  parser.add_argument('--det_steps', type=int, default=5, help='steps of each determinism run')
  parser.add_argument('--batches', default='4,1', help='render.batch_size values to time')
  parser.add_argument('--skip', default='', help=f'comma-separated parts to skip, of {PARTS}')
  parser.add_argument('--determinism', default='flag', choices=['flag', 'both'])
  parser.add_argument('--repeats', type=int, default=3, help='steady calls per timing')
  parser.add_argument('--out', default='gpu_check.json')
  parser.add_argument('--child', choices=['timing', 'run'], help=argparse.SUPPRESS)
  parser.add_argument('--batch', type=int, default=4, help=argparse.SUPPRESS)
  args = parser.parse_args()
  args.batches = [int(b) for b in args.batches.split(',') if b]
  args.skip = {s for s in args.skip.split(',') if s}
  if args.skip - set(PARTS):
    parser.error(f'--skip takes parts of {PARTS}, not {sorted(args.skip - set(PARTS))}')
  return args


def main():
  args = parse_args()
  if args.child:
    with tempfile.TemporaryDirectory() as tmp:
      result = (child_timing if args.child == 'timing' else child_run)(args, tmp)
    result['info'] = device_info()
    print(json.dumps(result))
    return
  results = dict(args=dict(tiny=args.tiny, steps=args.steps, det_steps=args.det_steps,
                           batches=args.batches, skip=sorted(args.skip),
                           determinism=args.determinism, repeats=args.repeats))
  ok, start = True, time.perf_counter()
  print(f"gpu_check: {'tiny SD, cpu sizes' if args.tiny else 'full-size SD 2.1-base, bfloat16'}"
        f" (random weights), configs/hamburger.py", flush=True)
  with tempfile.TemporaryDirectory() as cache:
    # Timing and the finite run share compiled programs through a persistent cache: the finite
    # run's batch-4 update is the timing's, so it need not compile again (the compile s in the
    # table is each batch's first compile, made before the cache holds it).
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache)
    if 'timing' not in args.skip:
      ok &= part_timing(args, env, results)
    if 'finite' not in args.skip:
      ok &= part_finite(args, env, results)
  if 'determinism' not in args.skip:
    ok &= part_determinism(args, results)
  results['total_s'] = time.perf_counter() - start
  results['ok'] = bool(ok)
  meta = results.get('meta', {})
  print(f"device: {meta.get('device')} ({meta.get('kind')}, {meta.get('devices')} device(s), "
        f"jax {meta.get('jax')})  total {results['total_s']:.0f} s  "
        f"{'ok' if ok else 'FAILED'}", flush=True)
  with open(args.out, 'w') as f:
    json.dump(results, f, indent=2)
  print(f'wrote {args.out}')
  sys.exit(0 if ok else 1)


if __name__ == '__main__':
  main()

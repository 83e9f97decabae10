"""How accurate are renders for a fixed budget of samples per ray? (not a test: it prints tables).

  cd /work/main && python -m benchmarks.render_sampling
  python -m benchmarks.render_sampling --keys=1 --mlp_rays=0        # quicker, no MLP timing
  python -m benchmarks.render_sampling --reference_samples=4096 --no-check_reference

The paper does not say how samples are placed along rays (paper.md §2 [NIP]). We render N
stratified samples plus M importance samples drawn (sample_pdf) from the compositing weights of a
coarse pass of the same field (dreamfusion_jax/defaults.py: render.num_samples = 64,
render.num_importance_samples = 32). This script measures that choice against stratified-only
sampling at roughly the same cost.

What it does:
  * Analytic fields shaped like what DreamFusion renders, each `(means, variance) -> (raw, albedo)`
    with density = exp(raw) and the albedo 0.5 + 0.5 sin(3 x + phase) per channel:
      ball       an opaque ball off the centre, raw = k (r0 - |x - c|), k = 100 (sharp surface);
      shell      a thin soft shell, raw = log(peak) - ((|x| - r0) / w)^2 / 2, w = 0.015
                 (peak 100: about 98% opaque through one wall, so both walls show);
      two_balls  the union (max of raw) of two balls of different sizes, sharper (k = 200).
  * Views: camera_from_angles at three (elevation, azimuth) pairs, distance 1.3, focal_mult 1.0,
    64x64, a point light above and beside the camera; each view is rendered in LAMBERTIAN and in
    ALBEDO shading over a white background.
  * Reference: the same views with --reference_samples (2048) stratified samples, randomized=False,
    no importance samples. The first line printed compares it with twice as many samples on the
    first view: errors much below that floor mean nothing (--no-check_reference skips it).
  * Strategies "N+M" (N stratified, M importance; M = 0 is stratified only), each with
    randomized=True (training: jittered strata and pdf samples, averaged over --keys keys) and
    randomized=False (midpoints, one render).

How to read the tables (one per randomized setting; one row per strategy):
  coarse, fine  field evaluations per ray. The coarse pass (N points) is density only and has no
                gradient (stop_gradient); the fine pass (N + M points) also takes the field's
                gradient for the normals, and in training it is differentiated again for the
                update, so a fine evaluation costs several coarse ones. Compare strategies by time.
  PSNR          rgb vs the reference, dB, the mean of per-render PSNRs over fields x views x
                shadings (x keys); higher is better (above ~40 dB the difference is invisible at
                8 bits; the numbers still rank the strategies). PSNR <field>: one field only.
  |dA|          mean |acc - acc_ref| over all pixels.
  |dD|          mean |depth - depth_ref| over pixels with acc_ref > 0.5 (world units; the objects
                are ~0.5 across, so 0.01 is 2% of their size).
  n err         mean angle, degrees, between normalised sum(w n) and the reference's, same pixels.
  ms analytic   median wall time of one 64x64 LAMBERTIAN render of the ball (jitted, forward
                only, normals included; strategies timed in turns, --repeats rounds). The
                analytic field is cheap, so this is mostly the renderer's own cost (sorting,
                interpolation, compositing).
  s MLP         (--mlp_rays=0 skips it) median wall time of what a training step does with a
                render: the gradient w.r.t. the parameters of a 64x64 LAMBERTIAN render
                (randomized=True) through a randomly initialised paper-size NeRF MLP
                (dreamfusion_jax/defaults.py: 5 blocks x 128), timed on --mlp_rays rays and scaled to 64x64;
                measured once per strategy and shown in both tables. This is the cost that
                matters when choosing a strategy: the MLP, not the renderer, dominates a step.
The line under each table compares the default 64+32 with the stratified-only strategies, from
the numbers above: the one closest in cost (s MLP, else ms analytic) and the one with as many
field evaluations in total (N + (N + M) = 160), and names the best PSNR at no more than the
default's cost (+5%).

Timings are for whatever machine runs it; run it alone for clean numbers.
"""
import argparse
import time
from typing import Callable, Dict, List, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import defaults
from dreamfusion_jax import field as field_lib
from dreamfusion_jax import render

DISTANCE = 1.3  # Camera distance from the origin.
FOCAL_MULT = 1.0  # focal_px = focal_mult * width.
VIEWS = ((0.0, 0.0), (25.0, 130.0), (65.0, -110.0))  # (elevation, azimuth) in degrees.
SHADINGS = ((render.LAMBERTIAN, 'lambertian'), (render.ALBEDO, 'albedo'))
# (num_samples, num_importance): stratified only at 96, 128, 160 evaluations; importance
# strategies with 96 fine samples after a coarse pass of 64, 48 or 32.
STRATEGIES = ((96, 0), (128, 0), (160, 0), (64, 32), (48, 48), (32, 64))
DEFAULT = (64, 32)  # dreamfusion_jax/defaults.py.
VARIANCE = jnp.float32(0.0)  # The analytic fields ignore the IPE variance.


# ----------------------------------------------------------------------------- analytic fields


def positional_albedo(means):
  """Albedo 0.5 + 0.5 sin(3 x + phase) per channel, phases (0, 2, 4): (..., 3) in [0, 1]."""
  return 0.5 + 0.5 * jnp.sin(3.0 * means + jnp.array([0.0, 2.0, 4.0]))


def ball_raw(means, center, radius, sharpness):
  """Raw density k (r0 - |x - c|) of a ball: positive inside, normals point outward."""
  return sharpness * (radius - jnp.linalg.norm(means - jnp.asarray(center), axis=-1))


def ball_field(center=(0.15, -0.1, 0.05), radius=0.45, sharpness=100.0):
  """An opaque ball off the centre with a sharp surface and a coloured albedo."""
  def field_fn(means, variance):
    del variance
    return ball_raw(means, center, radius, sharpness), positional_albedo(means)
  return field_fn


def shell_field(radius=0.45, width=0.015, peak=100.0):
  """A thin soft shell: density peak * exp(-((|x| - r0) / w)^2 / 2), semi-opaque per wall."""
  def field_fn(means, variance):
    del variance
    r = jnp.linalg.norm(means, axis=-1)
    return jnp.log(peak) - 0.5 * ((r - radius) / width) ** 2, positional_albedo(means)
  return field_fn


def two_balls_field(sharpness=200.0):
  """The union (max of raw density) of two balls of different sizes."""
  def field_fn(means, variance):
    del variance
    raw = jnp.maximum(ball_raw(means, (0.25, 0.2, 0.0), 0.3, sharpness),
                      ball_raw(means, (-0.2, -0.25, 0.1), 0.22, sharpness))
    return raw, positional_albedo(means)
  return field_fn


FIELDS = {'ball': ball_field, 'shell': shell_field, 'two_balls': two_balls_field}


def white(directions):
  """Constant white background."""
  return jnp.ones_like(directions)


# ----------------------------------------------------------------------------- rendering


class View(NamedTuple):
  """One camera and its light."""
  camera: camera_lib.Camera
  light_position: jax.Array  # (3,)


def make_views() -> List[View]:
  """The VIEWS cameras, each lit from 35 degrees above and 50 degrees beside it, 1.5 away."""
  views = []
  for elevation, azimuth in VIEWS:
    cam = camera_lib.camera_from_angles(elevation, azimuth, DISTANCE, FOCAL_MULT)
    light = 1.5 * camera_lib.direction_from_angles(jnp.float32(min(elevation + 35.0, 89.0)),
                                                   jnp.float32(azimuth + 50.0))
    views.append(View(cam, light))
  return views


def make_renderer(field_fns, settings: render.RenderSettings, res: int, chunk: int) -> Callable:
  """Jitted (field index, view, shading_mode, key) -> outputs (res, res, ...) of render_rays.

  The field is chosen by a traced index (lax.switch runs only that branch), so one compilation
  serves every field. Rays go through in chunks of `chunk` (lax.map) to bound the memory of
  dense references; with chunk >= res * res it is one render_rays call, as render_camera does.
  """
  num_rays = res * res
  chunk = min(chunk, num_rays)
  assert num_rays % chunk == 0, (num_rays, chunk)

  @jax.jit
  def render_view(field_index, view, shading_mode, key):
    def field_fn(means, variance):
      return jax.lax.switch(field_index, field_fns, means, variance)

    origins, directions = camera_lib.generate_rays(view.camera, res, res)
    origins = origins.reshape(-1, chunk, 3)
    directions = directions.reshape(-1, chunk, 3)
    keys = jax.random.split(key, origins.shape[0])

    def one(args):
      o, d, k = args
      return render.render_rays(field_fn, white, o, d, k, variance=VARIANCE,
                                light_position=view.light_position, shading_mode=shading_mode,
                                settings=settings)

    out = jax.lax.map(one, (origins, directions, keys))
    return {k: v.reshape(res, res, *v.shape[2:]) for k, v in out.items()}

  return render_view


def to_numpy(out: Dict[str, jax.Array]) -> Dict[str, np.ndarray]:
  """Blocks on and copies the outputs needed by the metrics."""
  return {k: np.asarray(out[k]) for k in ('rgb', 'acc', 'depth', 'normals')}


def interleaved_median_times(fns: Dict[object, Callable], repeats: int) -> Dict[object, float]:
  """Median wall time (seconds) of each no-argument function, results blocked on.

  Each is called once untimed (compilation), then the functions are timed in turns, `repeats`
  rounds, so that a change in the machine's load touches all of them alike.
  """
  for fn in fns.values():
    jax.block_until_ready(fn())
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn())
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}


# ----------------------------------------------------------------------------- metrics


def unit(v: np.ndarray) -> np.ndarray:
  """Normalises the last axis; zero vectors stay zero."""
  n = np.linalg.norm(v, axis=-1, keepdims=True)
  return v / np.maximum(n, 1e-12)


def errors(out: Dict[str, np.ndarray], ref: Dict[str, np.ndarray]) -> Dict[str, float]:
  """psnr (rgb, dB), acc (mean |dA|), depth and normal (degrees) errors over acc_ref > 0.5."""
  mse = float(np.mean((out['rgb'] - ref['rgb']) ** 2))
  mask = ref['acc'] > 0.5
  cosine = np.clip(np.sum(unit(out['normals']) * unit(ref['normals']), axis=-1), -1.0, 1.0)
  return dict(
      psnr=-10.0 * np.log10(max(mse, 1e-12)),
      acc=float(np.mean(np.abs(out['acc'] - ref['acc']))),
      depth=float(np.mean(np.abs(out['depth'] - ref['depth'])[mask])),
      normal=float(np.mean(np.degrees(np.arccos(cosine))[mask])),
  )


# ----------------------------------------------------------------------------- MLP timing


def mlp_grad_fn(strategy: Tuple[int, int], num_rays: int, res: int) -> Callable:
  """No-argument function: the params-gradient of a LAMBERTIAN render through the paper's MLP.

  A randomly initialised NeRFMLP and BackgroundMLP of dreamfusion_jax/defaults.py, randomized=True and the
  final IPE variance as in training; the middle `num_rays` rays of a res x res view.
  """
  config = defaults.get_config()
  nerf, background = field_lib.build(config)
  k_nerf, k_bg, k_render = jax.random.split(jax.random.PRNGKey(0), 3)
  params = {'nerf': nerf.init(k_nerf, jnp.zeros((1, 3)), VARIANCE)['params'],
            'background': background.init(k_bg, jnp.zeros((1, 3)))['params']}
  view = make_views()[1]
  origins, directions = camera_lib.generate_rays(view.camera, res, res)
  start = (res * res - num_rays) // 2
  origins = origins.reshape(-1, 3)[start:start + num_rays]
  directions = directions.reshape(-1, 3)[start:start + num_rays]
  settings = render.RenderSettings(num_samples=strategy[0], num_importance=strategy[1],
                                   randomized=True)
  variance = jnp.float32(config.schedule.lambda_sigma_end)

  @jax.jit
  def grad_of_render(params, key):
    def loss(params):
      field_fn, bg_fn = field_lib.bind(nerf, background, params)
      out = render.render_rays(field_fn, bg_fn, origins, directions, key, variance=variance,
                               light_position=view.light_position,
                               shading_mode=jnp.int32(render.LAMBERTIAN), settings=settings)
      return jnp.sum(out['rgb']) + jnp.sum(out['orientation']) + jnp.sum(out['acc'])
    return jax.grad(loss)(params)

  return lambda: grad_of_render(params, k_render)


def mlp_seconds(strategies, num_rays: int, res: int, repeats: int) -> Dict[Tuple[int, int], float]:
  """Seconds per res x res training render (gradient through the MLP), timed on num_rays rays."""
  fns = {s: mlp_grad_fn(s, num_rays, res) for s in strategies}
  return {s: t * res * res / num_rays for s, t in interleaved_median_times(fns, repeats).items()}


# ----------------------------------------------------------------------------- the benchmark


def render_references(fields, views, res: int, num_samples: int, chunk: int):
  """{(field, view index, shading): outputs} of a dense stratified render, randomized=False."""
  settings = render.RenderSettings(num_samples=num_samples, num_importance=0, randomized=False)
  render_view = make_renderer([make() for make in fields.values()], settings, res, chunk)
  refs = {}
  for f, name in enumerate(fields):
    for v, view in enumerate(views):
      for mode, _ in SHADINGS:
        refs[name, v, mode] = to_numpy(
            render_view(jnp.int32(f), view, jnp.int32(mode), jax.random.PRNGKey(0)))
  return refs


def reference_floor(fields, views, res: int, num_samples: int, chunk: int, refs) -> str:
  """One line: errors of the reference against one with twice the samples (first view)."""
  denser = render_references(fields, views[:1], res, 2 * num_samples, chunk)
  parts = []
  for name in fields:
    e = errors(refs[name, 0, render.LAMBERTIAN], denser[name, 0, render.LAMBERTIAN])
    parts.append(f"{name} {e['psnr']:.1f} dB, |dD| {e['depth']:.1e}, n {e['normal']:.3f} deg")
  return f'reference floor, {num_samples} vs {2 * num_samples} samples (view 0): ' + '; '.join(
      parts)


def evaluate(fields, views, refs, strategy: Tuple[int, int], randomized: bool, num_keys: int,
             res: int) -> Tuple[Dict[str, float], Callable]:
  """Mean errors of one strategy over fields x views x shadings (x keys).

  Returns: the errors (and per-field PSNR 'psnr_<field>'), and a no-argument function rendering
  the ball's first view, LAMBERTIAN, for timing.
  """
  settings = render.RenderSettings(num_samples=strategy[0], num_importance=strategy[1],
                                   randomized=randomized)
  keys = [jax.random.PRNGKey(100 + i) for i in range(num_keys if randomized else 1)]
  render_view = make_renderer([make() for make in fields.values()], settings, res, res * res)
  rows, per_field = [], {}
  for f, name in enumerate(fields):
    for v, view in enumerate(views):
      for mode, _ in SHADINGS:
        for key in keys:
          out = to_numpy(render_view(jnp.int32(f), view, jnp.int32(mode), key))
          e = errors(out, refs[name, v, mode])
          rows.append(e)
          per_field.setdefault(name, []).append(e['psnr'])
  result = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
  result.update({f'psnr_{name}': float(np.mean(p)) for name, p in per_field.items()})
  timed = lambda: render_view(jnp.int32(0), views[0], jnp.int32(render.LAMBERTIAN), keys[0])
  return result, timed


def strategy_name(strategy: Tuple[int, int]) -> str:
  """'64+32' for 64 stratified and 32 importance samples, '96+0' for stratified only."""
  return f'{strategy[0]}+{strategy[1]}'


def evaluations(strategy: Tuple[int, int]) -> Tuple[int, int]:
  """(coarse, fine) field evaluations per ray: the coarse pass runs only with importance."""
  num_samples, num_importance = strategy
  return (num_samples if num_importance else 0), num_samples + num_importance


def format_table(title: str, results, field_names, with_mlp: bool) -> str:
  """Aligned table: one row per strategy."""
  header = (['strategy', 'coarse', 'fine', 'PSNR'] + [f'PSNR {n}' for n in field_names] +
            ['|dA|', '|dD|', 'n err', 'ms analytic'] + (['s MLP'] if with_mlp else []))
  lines = []
  for strategy, r in results.items():
    coarse, fine = evaluations(strategy)
    row = [strategy_name(strategy) + (' *' if strategy == DEFAULT else ''), str(coarse),
           str(fine), f"{r['psnr']:.2f}"] + [f"{r['psnr_' + n]:.2f}" for n in field_names]
    row += [f"{r['acc']:.2e}", f"{r['depth']:.2e}", f"{r['normal']:.2f}", f"{r['ms']:.1f}"]
    if with_mlp:
      row.append(f"{r['s_mlp']:.2f}")
    lines.append(row)
  widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
  fmt = lambda cells: '  '.join(
      c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
  rule = '-' * len(fmt(header))
  return '\n'.join([title, rule, fmt(header), rule] + [fmt(l) for l in lines] + [rule])


def conclusion(results, cost_key: str) -> str:
  """One line comparing the default with stratified-only sampling, computed from the results."""
  d = results[DEFAULT]
  stratified = {s: r for s, r in results.items() if s[1] == 0}
  # The stratified-only strategy closest in cost, and the one with the same total evaluations.
  near = min(stratified, key=lambda s: abs(np.log(stratified[s][cost_key] / d[cost_key])))
  same_evals = max(stratified, key=lambda s: s[0] if s[0] <= sum(evaluations(DEFAULT)) else -1)
  unit_name = 's MLP' if cost_key == 's_mlp' else 'ms analytic'

  def versus(s):
    r = stratified[s]
    return (f"vs {strategy_name(s)} ({d[cost_key]:.3g} vs {r[cost_key]:.3g} {unit_name}): "
            f"{d['psnr'] - r['psnr']:+.2f} dB PSNR, depth err x{d['depth'] / r['depth']:.2f}, "
            f"normal err x{d['normal'] / r['normal']:.2f}")

  cheaper = {s: r for s, r in results.items() if r[cost_key] <= 1.05 * d[cost_key]}
  best = max(cheaper, key=lambda s: cheaper[s]['psnr'])
  parts = [f'{strategy_name(DEFAULT)} {versus(near)}']
  if same_evals != near:
    parts.append(versus(same_evals))
  parts.append(f'best PSNR at <= the default\'s cost (+5%): {strategy_name(best)} '
               f"({cheaper[best]['psnr']:.2f} dB)")
  return 'Conclusion: ' + '; '.join(parts) + '.'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--resolution', type=int, default=64)
  parser.add_argument('--reference_samples', type=int, default=2048)
  parser.add_argument('--keys', type=int, default=3, help='keys averaged when randomized')
  parser.add_argument('--repeats', type=int, default=5, help='timed runs (median)')
  parser.add_argument('--mlp_rays', type=int, default=128,
                      help='rays for the MLP timing (0: skip it)')
  parser.add_argument('--mlp_repeats', type=int, default=3)
  parser.add_argument('--check_reference', action=argparse.BooleanOptionalAction, default=True,
                      help='compare the reference with one of twice the samples')
  parser.add_argument('--chunk', type=int, default=512, help='rays per chunk of the reference')
  args = parser.parse_args()
  res = args.resolution
  start = time.perf_counter()

  views = make_views()
  refs = render_references(FIELDS, views, res, args.reference_samples, args.chunk)
  print(f'{len(FIELDS)} fields x {len(views)} views x {len(SHADINGS)} shadings at {res}x{res}; '
        f'reference: {args.reference_samples} stratified samples, randomized=False '
        f'({time.perf_counter() - start:.0f} s)')
  if args.check_reference:
    print(reference_floor(FIELDS, views, res, args.reference_samples, args.chunk, refs))

  with_mlp = args.mlp_rays > 0
  if with_mlp:
    seconds_mlp = mlp_seconds(STRATEGIES, args.mlp_rays, res, args.mlp_repeats)
  for randomized in (True, False):
    results, timed = {}, {}
    for s in STRATEGIES:
      results[s], timed[s] = evaluate(FIELDS, views, refs, s, randomized, args.keys, res)
    for s, seconds in interleaved_median_times(timed, args.repeats).items():
      results[s]['ms'] = 1e3 * seconds
      if with_mlp:
        results[s]['s_mlp'] = seconds_mlp[s]
    title = (f'randomized=True (training), mean over {args.keys} keys' if randomized else
             'randomized=False (deterministic midpoints)')
    print()
    print(format_table(title, results, list(FIELDS), with_mlp))
    print(conclusion(results, 's_mlp' if with_mlp else 'ms'))
  print(f'\n(* = dreamfusion_jax/defaults.py default; total {time.perf_counter() - start:.0f} s)')


if __name__ == '__main__':
  main()

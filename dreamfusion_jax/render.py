"""Volume rendering with diffuse shading (paper §3.1, Eq. 5 and 7; paper.md §2, §3).

Pure functions over arrays. A ray's samples are intervals between sorted distances ("edges") along
a unit direction, so interval lengths are distances. The field is queried only inside the bounding
sphere: samples span [max(near, entry), exit] of the ray's intersection with it.
"""
from typing import Callable, Dict, NamedTuple

import jax
import jax.numpy as jnp

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax.field import FieldFn

# Shading modes [P §3.1, A.2]. The mode of a view is an int32 array inside the compiled step.
ALBEDO, LAMBERTIAN, TEXTURELESS = 0, 1, 2
SHADING_MODES = ('albedo', 'lambertian', 'textureless')

_EPS = 1e-10  # Floor of the accumulated alpha when normalising the depth.


class RenderSettings(NamedTuple):
  """Static render settings (Python values, fixed at trace time)."""
  radius: float = 1.4  # Bounding sphere [P §3.2].
  near: float = 0.05  # Closest sample to the camera.
  num_samples: int = 64  # Stratified samples per ray.
  num_importance: int = 32  # Extra samples drawn from the coarse weights (0: none).
  ambient: float = 0.1  # Ambient light of shaded renders [P A.2].
  diffuse: float = 0.9  # Diffuse light of shaded renders [P A.2].
  max_log_density: float = 15.0  # Clip on raw density before exp (overflow guard).
  randomized: bool = True  # Jitter samples (training); False gives deterministic midpoints.
  # Normals from the density gradient. False: zero normals and no second backward pass (2/3 of a
  # toy step), for renders whose colours and losses do not read them (train.needs_normals).
  normals: bool = True

  @classmethod
  def from_config(cls, config, randomized: bool = True) -> 'RenderSettings':
    return cls(radius=config.render.bound_radius, near=config.render.near,
               num_samples=config.render.num_samples,
               num_importance=config.render.num_importance_samples,
               ambient=config.light.ambient, diffuse=config.light.diffuse,
               max_log_density=config.field.max_log_density, randomized=randomized)


def intersect_sphere(origins, directions, radius: float):
  """Distances at which rays enter and leave a centred sphere.

  Args:
    origins: (..., 3); directions: (..., 3) unit vectors; radius: sphere radius.

  Returns:
    t_enter, t_exit: (...,) distances along the ray (t_enter < 0 for an origin inside).
    hit: (...,) bool, whether the line meets the sphere.
  """
  b = jnp.sum(origins * directions, axis=-1)
  c = jnp.sum(origins ** 2, axis=-1) - radius ** 2
  disc = b ** 2 - c
  root = jnp.sqrt(jnp.maximum(disc, 0.0))
  return -b - root, -b + root, disc > 0


def ray_bounds(origins, directions, radius: float, near: float):
  """[t_near, t_far] of each ray inside the sphere; empty (t_near = t_far) for a miss.

  Cameras may sit inside the sphere (distance U(1, 1.5) < 1.4), so t_near is clipped to `near`.
  Returns: t_near, t_far (...,).
  """
  t_enter, t_exit, hit = intersect_sphere(origins, directions, radius)
  t_near = jnp.maximum(t_enter, near)
  t_far = jnp.where(hit, jnp.maximum(t_exit, t_near), t_near)
  return t_near, t_far


def stratified_edges(key, t_near, t_far, num_samples: int, randomized: bool):
  """num_samples intervals splitting [t_near, t_far], interior edges jittered.

  Edge i (0 < i < N) is drawn uniformly in [(i - 1/2) / N, (i + 1/2) / N] of the span, so edges
  stay sorted; the outer edges stay at t_near and t_far, so the samples cover the whole span.
  Args: t_near, t_far: (...,). Returns: edges (..., num_samples + 1), sorted.
  """
  u = jnp.linspace(0.0, 1.0, num_samples + 1)
  if randomized:
    jitter = jax.random.uniform(key, t_near.shape + (num_samples - 1,), minval=-0.5, maxval=0.5)
    u = jnp.concatenate([jnp.zeros_like(jitter[..., :1]), u[1:-1] + jitter / num_samples,
                         jnp.ones_like(jitter[..., :1])], axis=-1)
  return t_near[..., None] + (t_far - t_near)[..., None] * u


def compositing_weights(density, deltas):
  """Volume-rendering weights w_i = alpha_i prod_{j<i}(1 - alpha_j) [P Eq. 5].

  Args: density: (..., N) >= 0; deltas: (..., N) interval lengths.
  Returns: weights (..., N).
  """
  tau_delta = density * deltas
  alpha = 1.0 - jnp.exp(-tau_delta)
  # Transmittance in log space: exp(-sum_{j<i} tau_j delta_j) never divides by (1 - alpha).
  trans = jnp.exp(-jnp.concatenate(
      [jnp.zeros_like(tau_delta[..., :1]), jnp.cumsum(tau_delta[..., :-1], axis=-1)], axis=-1))
  return alpha * trans


def sample_pdf(key, edges, weights, num_samples: int, randomized: bool):
  """Inverse-transform samples from the piecewise-constant density the weights define.

  Args: edges: (..., N + 1) sorted; weights: (..., N) >= 0.
  Returns: (..., num_samples) distances, sorted.
  """
  # A small floor keeps the CDF strictly increasing, so empty rays sample uniformly.
  pdf = weights + 1e-5
  pdf = pdf / jnp.sum(pdf, axis=-1, keepdims=True)
  cdf = jnp.concatenate([jnp.zeros_like(pdf[..., :1]),
                         jnp.minimum(1.0, jnp.cumsum(pdf[..., :-1], axis=-1)),
                         jnp.ones_like(pdf[..., :1])], axis=-1)
  shape = edges.shape[:-1] + (num_samples,)
  offset = jax.random.uniform(key, shape) if randomized else 0.5
  u = (jnp.arange(num_samples) + offset) / num_samples
  interp = jnp.vectorize(jnp.interp, signature='(m),(n),(n)->(m)')
  return interp(u, cdf, edges)


def field_with_normals(field_fn: FieldFn, means, variance):
  """Field outputs and normals n = -grad(raw density) / |grad(raw density)| [P §3.1].

  The gradient is taken of the pre-activation density (the same direction as that of
  density = exp(raw), and better conditioned), as MultiNeRF and threestudio do.

  Args: means: (..., 3); variance: () IPE variance.
  Returns: raw_density (...,), albedo (..., 3), normals (..., 3) unit (zero where the gradient is).
  """
  (raw, albedo), vjp = jax.vjp(lambda m: field_fn(m, variance), means)
  grad = vjp((jnp.ones_like(raw), jnp.zeros_like(albedo)))[0]
  return raw, albedo, camera_lib.safe_normalize(-grad)


def shade(albedo, normals, means, light_position, shading_mode, ambient: float, diffuse: float):
  """Per-sample colour c = rho (l_rho max(0, n . l_hat) + l_a) for a point light [P Eq. 7].

  Args:
    albedo, normals, means: (..., 3); light_position: (3,); shading_mode: () int32, one of
    ALBEDO (c = rho), LAMBERTIAN, TEXTURELESS (rho := 1, only the shading remains).
  Returns: (..., 3) colours.
  """
  light_dir = camera_lib.safe_normalize(light_position - means)
  lambert = ambient + diffuse * jnp.maximum(0.0, jnp.sum(normals * light_dir, axis=-1))
  base = jnp.where(shading_mode == TEXTURELESS, 1.0, albedo)
  return jnp.where(shading_mode == ALBEDO, albedo, base * lambert[..., None])


def render_rays(field_fn: FieldFn, background_fn: Callable, origins, directions, key, *,
                variance, light_position, shading_mode, settings: RenderSettings
                ) -> Dict[str, jnp.ndarray]:
  """Render rays through a field, shaded, composited over the background.

  Args:
    field_fn: (means (..., 3), variance) -> (raw_density (...), albedo (..., 3)).
    background_fn: directions (..., 3) -> colours (..., 3).
    origins, directions: (R, 3), directions unit.
    key: PRNG key for sample jitter.
    variance: () IPE variance; light_position: (3,); shading_mode: () int32.

  Returns: dict of
    rgb (R, 3) shaded colour over the background; acc (R,) accumulated alpha A = sum w;
    depth (R,) expected distance sum(w t) / A; normals (R, 3) sum(w n);
    orientation (R,) sum_i stopgrad(w_i) max(0, n_i . v)^2 [P §3.1, A.2].
    With settings.normals False, normals and orientation are zeros.
  """
  key_strata, key_pdf = jax.random.split(key)
  t_near, t_far = ray_bounds(origins, directions, settings.radius, settings.near)
  edges = stratified_edges(key_strata, t_near, t_far, settings.num_samples, settings.randomized)

  def points(edges):
    t_mid = 0.5 * (edges[..., 1:] + edges[..., :-1])
    return t_mid, origins[..., None, :] + directions[..., None, :] * t_mid[..., None]

  def density(raw):
    return jnp.exp(jnp.minimum(raw, settings.max_log_density))

  if settings.num_importance > 0:
    # Coarse pass of the same MLP (no gradient), then resample where the weights are.
    _, means = points(edges)
    raw, _ = field_fn(means, variance)
    coarse_w = jax.lax.stop_gradient(
        compositing_weights(density(raw), jnp.diff(edges, axis=-1)))
    extra = sample_pdf(key_pdf, edges, coarse_w, settings.num_importance, settings.randomized)
    edges = jnp.sort(jnp.concatenate([edges, extra], axis=-1), axis=-1)

  t_mid, means = points(jax.lax.stop_gradient(edges))
  if settings.normals:
    raw, albedo, normals = field_with_normals(field_fn, means, variance)
  else:
    raw, albedo = field_fn(means, variance)
    normals = jnp.zeros_like(albedo)
  weights = compositing_weights(density(raw), jnp.diff(edges, axis=-1))
  colors = shade(albedo, normals, means, light_position, shading_mode,
                 settings.ambient, settings.diffuse)
  acc = jnp.sum(weights, axis=-1)
  rgb = jnp.sum(weights[..., None] * colors, axis=-2)
  rgb = rgb + (1.0 - acc[..., None]) * background_fn(directions)
  facing = jnp.sum(normals * directions[..., None, :], axis=-1)
  orientation = jnp.sum(jax.lax.stop_gradient(weights) * jnp.maximum(0.0, facing) ** 2, axis=-1)
  return dict(
      rgb=rgb,
      acc=acc,
      depth=jnp.sum(weights * t_mid, axis=-1) / jnp.maximum(acc, _EPS),
      normals=jnp.sum(weights[..., None] * normals, axis=-2),
      orientation=orientation,
  )


def render_camera(field_fn: FieldFn, background_fn: Callable, camera, height: int, width: int,
                  key, **kwargs) -> Dict[str, jnp.ndarray]:
  """render_rays for every pixel of a camera; outputs reshaped to (height, width, ...)."""
  origins, directions = camera_lib.generate_rays(camera, height, width)
  out = render_rays(field_fn, background_fn, origins.reshape(-1, 3), directions.reshape(-1, 3),
                    key, **kwargs)
  return {k: v.reshape(height, width, *v.shape[1:]) for k, v in out.items()}

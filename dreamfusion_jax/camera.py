"""Cameras, lights and rays: the random views DreamFusion renders each step [P §3.2, A.2].

Section references: [P §x] is the paper's section, paper.md §x is ../shared/docs/paper.md
(§3 shading and the light, §4 camera sampling).

World conventions (fixed for the whole project; dreamfusion_jax/defaults.py refers here):
  * +z is up.
  * Azimuth is measured counter-clockwise seen from above (from +z), starting at the +x axis.
    A camera at elevation el, azimuth az and distance r sits at
        r * (cos el cos az, cos el sin az, sin el).
  * The object's "front" faces +x, so a camera at azimuth 0 sees the front; azimuths are
    reported wrapped to [-180, 180) degrees, so |azimuth| is the angle away from the front.
  * Camera frame, OpenGL style: the camera-to-world rotation's columns are (right, up, back);
    the camera looks along -back. A camera-frame vector v maps to the world as rotation @ v.
  * Images: rows go top to bottom, columns left to right, pixel centres at +0.5. The principal
    point is the image centre, pixels are square, and focal_px = focal_mult * width [P §3.2].

Every function is pure, takes explicit PRNG keys, reads config values as Python constants at
trace time, and is jittable and vmappable (vmap over keys to draw a batch of cameras).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

# Below this norm a vector is treated as zero when normalising.
_EPS = 1e-12
# Below this |forward x up| (unit vectors) look_at switches to another reference axis: the
# camera looks (almost) along its up vector, e.g. straight down from the pole.
_PARALLEL_EPS = 1e-4


class Camera(NamedTuple):
  """One pinhole camera. A pytree: vmapped samplers return a Camera of stacked fields."""
  origin: jax.Array  # (3,) position in world coordinates (after jitter)
  rotation: jax.Array  # (3, 3) camera-to-world rotation, columns right, up, back
  focal_mult: jax.Array  # () focal length / image width: focal_px = focal_mult * W [P §3.2]
  elevation_deg: jax.Array  # () sampled elevation, degrees (before jitter)
  azimuth_deg: jax.Array  # () sampled azimuth wrapped to [-180, 180), degrees; 0 = front (+x)
  distance: jax.Array  # () sampled distance (before jitter)


def safe_normalize(v: jax.Array, fallback: jax.Array | None = None) -> jax.Array:
  """Unit vector along the last axis, with no NaN (value or gradient) at zero.

  Args:
    v: (..., D) vectors.
    fallback: optional (D,) or (..., D) unit vector returned where |v| is (nearly) zero;
      without it such vectors come back as (nearly) zero.

  Returns:
    (..., D) unit vectors.
  """
  sq = jnp.sum(v * v, axis=-1, keepdims=True)
  # sqrt(max(.)) rather than norm(): finite gradient at v = 0.
  n = jnp.sqrt(jnp.maximum(sq, _EPS * _EPS))
  out = v / n
  if fallback is not None:
    out = jnp.where(sq > _EPS * _EPS, out, jnp.asarray(fallback, v.dtype))
  return out


def wrap_degrees(angle_deg: jax.Array) -> jax.Array:
  """Wraps angles to [-180, 180) degrees.

  Args:
    angle_deg: (...) angles in degrees.

  Returns:
    (...) the same angles in [-180, 180).
  """
  w = jnp.mod(angle_deg + 180.0, 360.0) - 180.0
  # float rounding can make mod return exactly 360 for tiny negative inputs.
  return jnp.where(w >= 180.0, w - 360.0, w)


def direction_from_angles(elevation_deg: jax.Array, azimuth_deg: jax.Array) -> jax.Array:
  """Unit vector from the origin toward a camera at (elevation, azimuth); see module docstring.

  Args:
    elevation_deg: (...) elevation in degrees, +90 is straight above (+z).
    azimuth_deg: (...) azimuth in degrees, counter-clockwise from +x seen from above.

  Returns:
    (..., 3) unit vectors (cos el cos az, cos el sin az, sin el).
  """
  el = jnp.deg2rad(elevation_deg)
  az = jnp.deg2rad(azimuth_deg)
  return jnp.stack(
      [jnp.cos(el) * jnp.cos(az), jnp.cos(el) * jnp.sin(az), jnp.sin(el)], axis=-1)


def look_at(origin: jax.Array, target: jax.Array, up: jax.Array) -> jax.Array:
  """Camera-to-world rotation for a camera at `origin` looking at `target` [P A.2].

  Columns are (right, up, back) with back = -(forward). `up` is only a reference: the camera's
  up column is the component of it orthogonal to the viewing direction. When the viewing
  direction is (nearly) parallel to `up` (|forward x up| < 1e-4, e.g. a camera at the pole
  looking straight down with up = +z) the reference becomes the world axis least aligned with
  the viewing direction (+x for a camera looking straight down, so image-up points to the
  front), which keeps the result finite and orthonormal. If origin == target the camera looks
  along -x.

  Args:
    origin: (3,) camera position.
    target: (3,) point the optical axis passes through.
    up: (3,) approximate up direction (need not be unit length).

  Returns:
    (3, 3) rotation with det +1; columns right, up, back.
  """
  dtype = jnp.result_type(origin, target, up, jnp.float32)
  forward = safe_normalize(
      (target - origin).astype(dtype), fallback=jnp.array([-1.0, 0.0, 0.0], dtype))
  up_ref = safe_normalize(up.astype(dtype), fallback=jnp.array([0.0, 0.0, 1.0], dtype))
  cross = jnp.cross(forward, up_ref)
  # Degenerate case: reference axis = the world axis least aligned with forward (never parallel).
  alt_ref = jax.nn.one_hot(jnp.argmin(jnp.abs(forward)), 3, dtype=dtype)
  cross_alt = jnp.cross(forward, alt_ref)
  parallel = jnp.sum(cross * cross) < _PARALLEL_EPS * _PARALLEL_EPS
  right = safe_normalize(jnp.where(parallel, cross_alt, cross))
  cam_up = jnp.cross(right, forward)  # unit: right and forward are orthonormal.
  return jnp.stack([right, cam_up, -forward], axis=-1)


def camera_from_angles(elevation_deg, azimuth_deg, distance, focal_mult) -> Camera:
  """Deterministic camera looking at the world origin with up +z (eval views, turntables).

  The rotation is written in closed form: right = (-sin az, cos az, 0), back = the direction
  toward the camera, up = back x right. It equals look_at(origin, 0, +z) for elevations below
  90 degrees and, unlike it, stays continuous in azimuth at the pole (elevation +-90), where the
  image's up points away from the azimuth (a turntable's top view keeps rotating).

  Args:
    elevation_deg: () elevation in degrees.
    azimuth_deg: () azimuth in degrees (any range; stored wrapped to [-180, 180)).
    distance: () distance from the origin.
    focal_mult: () focal length / image width.

  Returns:
    Camera with no jitter; origin = distance * direction_from_angles(el, az).
  """
  elevation_deg = jnp.asarray(elevation_deg, jnp.float32)
  azimuth_deg = jnp.asarray(azimuth_deg, jnp.float32)
  distance = jnp.asarray(distance, jnp.float32)
  back = direction_from_angles(elevation_deg, azimuth_deg)
  az = jnp.deg2rad(azimuth_deg)
  right = jnp.stack([-jnp.sin(az), jnp.cos(az), jnp.zeros_like(az)], axis=-1)
  cam_up = jnp.cross(back, right)
  return Camera(
      origin=distance[..., None] * back,
      rotation=jnp.stack([right, cam_up, back], axis=-1),
      focal_mult=jnp.asarray(focal_mult, jnp.float32),
      elevation_deg=elevation_deg,
      azimuth_deg=wrap_degrees(azimuth_deg),
      distance=distance,
  )


def sample_elevation_deg(key: jax.Array, cfg) -> jax.Array:
  """Elevation [P §3.2, A.2; paper.md §4]: a mixture of uniform-in-angle and uniform-in-area.

  With probability cfg.uniform_angle_prob, el ~ U(lo, hi) (oversamples the pole, "helpful"
  [P A.2]); otherwise el = asin(U(sin lo, sin hi)), uniform in area over the same band.

  Args:
    key: PRNG key.
    cfg: config.camera (reads elevation_range_deg, uniform_angle_prob).

  Returns:
    () elevation in degrees, in [lo, hi].
  """
  lo, hi = (float(v) for v in cfg.elevation_range_deg)
  p_angle = float(cfg.uniform_angle_prob)
  k_mix, k_angle, k_area = jax.random.split(key, 3)
  el_angle = jax.random.uniform(k_angle, (), jnp.float32, lo, hi)
  s_lo, s_hi = jnp.sin(jnp.deg2rad(lo)), jnp.sin(jnp.deg2rad(hi))
  s = jax.random.uniform(k_area, (), jnp.float32, s_lo, s_hi)
  el_area = jnp.rad2deg(jnp.arcsin(jnp.clip(s, -1.0, 1.0)))
  el_area = jnp.clip(el_area, lo, hi)  # float rounding of asin(sin(.)) at the band's ends.
  use_angle = jax.random.uniform(k_mix, ()) < p_angle
  return jnp.where(use_angle, el_angle, el_area)


def sample_camera(key: jax.Array, cfg) -> Camera:
  """Draws one training camera [P §3.2, A.2; paper.md §4].

  elevation: sample_elevation_deg; azimuth ~ U(cfg.azimuth_range_deg), wrapped to [-180, 180);
  distance ~ U(cfg.distance_range); position = distance * direction + U(-j, j)^3 with
  j = cfg.position_jitter; look-at target ~ N(0, lookat_std^2 I); up = +z + N(0, up_std^2 I)
  (the paper's 0.2 and 0.02 read as stds, like the peers [AMB]); focal_mult ~
  U(cfg.focal_mult_range).

  Args:
    key: PRNG key.
    cfg: config.camera ConfigDict.

  Returns:
    Camera; vmap over keys for a batch.
  """
  k_el, k_az, k_dist, k_jit, k_look, k_up, k_focal = jax.random.split(key, 7)
  az_lo, az_hi = (float(v) for v in cfg.azimuth_range_deg)
  d_lo, d_hi = (float(v) for v in cfg.distance_range)
  f_lo, f_hi = (float(v) for v in cfg.focal_mult_range)
  jitter = float(cfg.position_jitter)

  elevation = sample_elevation_deg(k_el, cfg)
  azimuth = jax.random.uniform(k_az, (), jnp.float32, az_lo, az_hi)
  distance = jax.random.uniform(k_dist, (), jnp.float32, d_lo, d_hi)
  origin = distance * direction_from_angles(elevation, azimuth)
  origin = origin + jax.random.uniform(k_jit, (3,), jnp.float32, -jitter, jitter)
  target = float(cfg.lookat_std) * jax.random.normal(k_look, (3,), jnp.float32)
  up = jnp.array([0.0, 0.0, 1.0], jnp.float32) + float(cfg.up_std) * jax.random.normal(
      k_up, (3,), jnp.float32)
  return Camera(
      origin=origin,
      rotation=look_at(origin, target, up),
      focal_mult=jax.random.uniform(k_focal, (), jnp.float32, f_lo, f_hi),
      elevation_deg=elevation,
      azimuth_deg=wrap_degrees(azimuth),
      distance=distance,
  )


def sample_light(key: jax.Array, camera_origin: jax.Array, cfg) -> jax.Array:
  """Point-light position [P A.2; paper.md §3].

  Direction ~ N(camera_origin, direction_std^2 I), normalised (falls back to +z if the draw is
  zero), so the light is usually on the camera's side; norm ~ U(cfg.distance_range).

  Args:
    key: PRNG key.
    camera_origin: (3,) camera position.
    cfg: config.light (reads direction_std, distance_range).

  Returns:
    (3,) light position in world coordinates.
  """
  k_dir, k_dist = jax.random.split(key)
  d_lo, d_hi = (float(v) for v in cfg.distance_range)
  camera_origin = jnp.asarray(camera_origin, jnp.float32)
  direction = camera_origin + float(cfg.direction_std) * jax.random.normal(
      k_dir, (3,), jnp.float32)
  direction = safe_normalize(direction, fallback=jnp.array([0.0, 0.0, 1.0], jnp.float32))
  return jax.random.uniform(k_dist, (), jnp.float32, d_lo, d_hi) * direction


def generate_rays(camera: Camera, height: int, width: int) -> tuple[jax.Array, jax.Array]:
  """One ray per pixel centre of a pinhole camera with focal_px = focal_mult * width [P §3.2].

  Pixel (i, j) (row i from the top, column j from the left) has the camera-frame direction
  ((j + 0.5 - W/2) / f, -(i + 0.5 - H/2) / f, -1), normalised and rotated to the world. For odd
  sizes the centre pixel's ray is the viewing direction -back.

  Args:
    camera: a single (unbatched) Camera; vmap for a batch.
    height: H, a Python int.
    width: W, a Python int.

  Returns:
    origins: (H, W, 3) the camera origin, repeated.
    directions: (H, W, 3) unit world-space directions.
  """
  focal_px = camera.focal_mult * width
  rows = jnp.arange(height, dtype=jnp.float32) + 0.5
  cols = jnp.arange(width, dtype=jnp.float32) + 0.5
  y = -(rows[:, None] - 0.5 * height) / focal_px  # (H, 1): up is positive.
  x = (cols[None, :] - 0.5 * width) / focal_px  # (1, W): right is positive.
  x, y = jnp.broadcast_arrays(x, y)
  dirs_cam = jnp.stack([x, y, -jnp.ones_like(x)], axis=-1)  # (H, W, 3)
  dirs_cam = safe_normalize(dirs_cam)
  directions = jnp.einsum('ij,hwj->hwi', camera.rotation, dirs_cam)
  origins = jnp.broadcast_to(camera.origin, directions.shape)
  return origins, directions

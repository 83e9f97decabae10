"""Tests for dreamfusion_jax/camera.py: sampling distributions [P §3.2, A.2], look_at, rays."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax.defaults import get_config
from dreamfusion_jax import camera as cam_lib

N = 20_000


def _camera_cfg(**overrides):
  cfg = get_config().camera
  for k, v in overrides.items():
    cfg[k] = v
  return cfg


def _draw(cfg, seed=0, n=N):
  keys = jax.random.split(jax.random.PRNGKey(seed), n)
  cams = jax.jit(jax.vmap(lambda k: cam_lib.sample_camera(k, cfg)))(keys)
  return jax.tree.map(np.asarray, cams)


@pytest.fixture(scope='module')
def default_cams():
  return _draw(_camera_cfg())


# ---- elevation: mixture of uniform-in-angle and uniform-in-area -------------------------------

def _elevation_cdf(el_deg, p_angle, lo=-10.0, hi=90.0):
  """Analytic CDF of p * U_angle(lo, hi) + (1 - p) * U_area(lo, hi), in degrees."""
  el_deg = np.asarray(el_deg, np.float64)
  f_angle = (el_deg - lo) / (hi - lo)
  s_lo, s_hi = math.sin(math.radians(lo)), math.sin(math.radians(hi))
  f_area = (np.sin(np.radians(el_deg)) - s_lo) / (s_hi - s_lo)
  return p_angle * f_angle + (1.0 - p_angle) * f_area


def _chi2(samples, p_angle, bins=20):
  edges = np.linspace(-10.0, 90.0, bins + 1)
  counts, _ = np.histogram(samples, edges)
  expected = np.diff(_elevation_cdf(edges, p_angle)) * len(samples)
  return float(np.sum((counts - expected) ** 2 / expected))


# chi-square, 19 degrees of freedom: the 0.999 quantile is 43.8.
CHI2_19_999 = 43.8


@pytest.mark.parametrize('p_angle', [0.5, 1.0, 0.0])
def test_elevation_histogram_matches_mixture(p_angle):
  el = _draw(_camera_cfg(uniform_angle_prob=p_angle)).elevation_deg
  assert el.min() >= -10.0 and el.max() <= 90.0
  assert _chi2(el, p_angle) < CHI2_19_999
  # ...and the histogram tells the shapes apart: every other mixture weight is rejected.
  for other in {0.0, 0.5, 1.0} - {p_angle}:
    assert _chi2(el, other) > 10 * CHI2_19_999, (p_angle, other)


def test_elevation_fraction_above_60(default_cams):
  el = default_cams.elevation_deg
  expected = 1.0 - _elevation_cdf(60.0, 0.5)  # 0.5 * 0.3 + 0.5 * (1 - sin 60)/(1 + sin 10)
  assert abs(expected - 0.2071) < 1e-3
  sigma = math.sqrt(expected * (1 - expected) / len(el))
  assert abs(np.mean(el > 60.0) - expected) < 4 * sigma


# ---- azimuth, distance, focal, jitter ---------------------------------------------------------

def test_azimuth_wrapped_and_uniform(default_cams):
  az = default_cams.azimuth_deg
  assert az.min() >= -180.0 and az.max() < 180.0
  counts, _ = np.histogram(az, np.linspace(-180, 180, 13))
  expected = len(az) / 12
  # chi-square, 11 degrees of freedom: 0.999 quantile 31.3.
  assert np.sum((counts - expected) ** 2 / expected) < 31.3
  # The stored azimuth is the one the camera sits at (before jitter): matches origin's angle.
  cfg_nojit = _camera_cfg(position_jitter=0.0)
  c = _draw(cfg_nojit, n=2000)
  az_from_origin = np.degrees(np.arctan2(c.origin[:, 1], c.origin[:, 0]))
  horiz = np.hypot(c.origin[:, 0], c.origin[:, 1]) > 1e-3
  diff = (az_from_origin - c.azimuth_deg + 180.0) % 360.0 - 180.0
  assert np.abs(diff[horiz]).max() < 1e-2


def test_wrap_degrees():
  x = jnp.array([0.0, 179.9, 180.0, -180.0, 360.0, -1e-8, 540.0, -190.0])
  w = np.asarray(cam_lib.wrap_degrees(x))
  np.testing.assert_allclose(w, [0.0, 179.9, -180.0, -180.0, 0.0, 0.0, -180.0, 170.0],
                             atol=1e-4)
  assert np.all(w >= -180.0) and np.all(w < 180.0)


def test_distance_focal_ranges(default_cams):
  c = default_cams
  assert c.distance.min() >= 1.0 and c.distance.max() <= 1.5
  assert abs(c.distance.mean() - 1.25) < 0.005
  assert c.focal_mult.min() >= 0.7 and c.focal_mult.max() <= 1.35
  assert abs(c.focal_mult.mean() - 1.025) < 0.01
  # Uniform: std = range / sqrt(12).
  assert abs(c.focal_mult.std() - 0.65 / math.sqrt(12)) < 0.005


def test_position_jitter(default_cams):
  c = default_cams
  nominal = c.distance[:, None] * np.asarray(
      cam_lib.direction_from_angles(c.elevation_deg, c.azimuth_deg))
  jitter = c.origin - nominal
  assert np.abs(jitter).max() <= 0.1 + 1e-5
  # U(-0.1, 0.1) per axis: std 0.1 / sqrt(3), independent axes.
  np.testing.assert_allclose(jitter.std(axis=0), 0.1 / math.sqrt(3), rtol=0.03)
  assert np.abs(jitter.mean(axis=0)).max() < 0.003


# ---- look-at and up noise ---------------------------------------------------------------------

def test_lookat_noise_std(default_cams):
  """The optical axis misses the world origin by the look-at noise projected to 2D."""
  o = default_cams.origin
  forward = -default_cams.rotation[:, :, 2]
  # Distance from the world origin to the optical axis line.
  to_origin = -o
  perp = to_origin - np.sum(to_origin * forward, -1, keepdims=True) * forward
  d2 = np.sum(perp ** 2, -1)
  # E d^2 = 2 std^2 for a 2D projection of N(0, std^2 I) (up to O(std^2/r^2) ~ 2%).
  std_hat = math.sqrt(d2.mean() / 2)
  assert abs(std_hat - 0.2) < 0.2 * 0.05, std_hat
  # Without look-at noise the axis passes through the origin.
  c0 = _draw(_camera_cfg(lookat_std=0.0), n=2000)
  f0 = -c0.rotation[:, :, 2]
  cos = np.sum(-c0.origin * f0, -1) / np.linalg.norm(c0.origin, axis=-1)
  assert cos.min() > 1 - 1e-5


def test_up_noise_std():
  """The camera's right vector tilts out of the horizontal by ~N(0, up_std^2)."""
  cfg = _camera_cfg(up_std=0.02)
  c = _draw(cfg)
  forward = -c.rotation[:, :, 2]
  low = np.abs(forward[:, 2]) < 0.8  # away from the pole, where roll is well defined
  right_z = c.rotation[low, 2, 0]
  assert abs(right_z.std() - 0.02) < 0.02 * 0.05, right_z.std()
  c0 = _draw(_camera_cfg(up_std=0.0), n=2000)
  assert np.abs(c0.rotation[:, 2, 0]).max() < 1e-5  # no roll without up noise


def test_sampled_rotations_orthonormal(default_cams):
  r = default_cams.rotation
  np.testing.assert_allclose(np.einsum('nji,njk->nik', r, r),
                             np.broadcast_to(np.eye(3), r.shape), atol=1e-5)
  np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)
  assert np.all(np.isfinite(r))


def test_sample_camera_deterministic():
  cfg = _camera_cfg()
  a = cam_lib.sample_camera(jax.random.PRNGKey(3), cfg)
  b = jax.jit(lambda k: cam_lib.sample_camera(k, cfg))(jax.random.PRNGKey(3))
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


# ---- look_at ----------------------------------------------------------------------------------

def _check_rotation(r):
  r = np.asarray(r)
  assert np.all(np.isfinite(r))
  np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-5)
  assert abs(np.linalg.det(r) - 1.0) < 1e-5


def test_look_at_basic():
  origin = jnp.array([2.0, 1.0, 0.5])
  target = jnp.array([0.1, -0.2, 0.3])
  r = np.asarray(cam_lib.look_at(origin, target, jnp.array([0.0, 0.0, 1.0])))
  _check_rotation(r)
  f = np.asarray(target - origin)
  np.testing.assert_allclose(-r[:, 2], f / np.linalg.norm(f), atol=1e-6)
  assert abs(r[2, 0]) < 1e-6  # right is horizontal
  assert r[2, 1] > 0  # camera up points up


@pytest.mark.parametrize('origin,up', [
    ((0.0, 0.0, 1.0), (0.0, 0.0, 1.0)),  # exactly at the pole
    ((0.0, 0.0, -1.2), (0.0, 0.0, 1.0)),  # looking straight up
    ((1e-8, -1e-8, 1.3), (0.0, 0.0, 1.0)),  # float32 noise off the pole
    ((0.0, 0.0, 1.0), (0.0, 0.0, 5.0)),  # non-unit up
    ((0.0, 0.0, 1.0), (0.0, 0.0, 0.0)),  # zero up
    ((0.3, 0.2, 0.1), (0.3, 0.2, 0.1)),  # up along the view direction, off axis
])
def test_look_at_pole_is_finite(origin, up):
  origin, up = jnp.array(origin), jnp.array(up)
  r = cam_lib.look_at(origin, jnp.zeros(3), up)
  _check_rotation(r)
  f = -np.asarray(origin) / np.linalg.norm(origin)
  np.testing.assert_allclose(-np.asarray(r)[:, 2], f, atol=1e-6)
  # Gradients through the degenerate branch are finite too.
  g = jax.grad(lambda o: jnp.sum(cam_lib.look_at(o, jnp.zeros(3), up) ** 2 * jnp.arange(9.)
                                 .reshape(3, 3)))(origin)
  assert np.all(np.isfinite(np.asarray(g)))


def test_look_at_origin_equals_target():
  r = cam_lib.look_at(jnp.ones(3), jnp.ones(3), jnp.array([0.0, 0.0, 1.0]))
  _check_rotation(r)


def test_sampled_camera_at_pole_is_finite():
  """Elevation band pinned at 90 with no noise: every camera looks straight down."""
  cfg = _camera_cfg(elevation_range_deg=(90.0, 90.0), position_jitter=0.0, lookat_std=0.0,
                    up_std=0.0)
  c = _draw(cfg, n=256)
  assert np.all(np.isfinite(c.rotation))
  np.testing.assert_allclose(c.rotation[:, :, 2], np.broadcast_to([0, 0, 1.0], (256, 3)),
                             atol=1e-5)
  np.testing.assert_allclose(np.linalg.det(c.rotation), 1.0, atol=1e-5)


# ---- camera_from_angles -----------------------------------------------------------------------

def test_camera_from_angles_front():
  c = cam_lib.camera_from_angles(0.0, 0.0, 1.3, 1.0)
  np.testing.assert_allclose(c.origin, [1.3, 0.0, 0.0], atol=1e-6)
  r = np.asarray(c.rotation)
  np.testing.assert_allclose(-r[:, 2], [-1.0, 0.0, 0.0], atol=1e-6)  # looks toward -x
  np.testing.assert_allclose(r[:, 1], [0.0, 0.0, 1.0], atol=1e-6)  # up is +z
  np.testing.assert_allclose(r[:, 0], [0.0, 1.0, 0.0], atol=1e-6)  # right is +y
  _check_rotation(r)


def test_camera_from_angles_matches_look_at():
  for el, az in [(30.0, 0.0), (30.0, 90.0), (-10.0, -135.0), (75.0, 200.0), (89.0, 45.0)]:
    c = cam_lib.camera_from_angles(el, az, 1.2, 0.9)
    r = cam_lib.look_at(c.origin, jnp.zeros(3), jnp.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(c.rotation, r, atol=1e-5)
    _check_rotation(c.rotation)
    assert -180.0 <= float(c.azimuth_deg) < 180.0
  # azimuth 90 sits on +y.
  np.testing.assert_allclose(cam_lib.camera_from_angles(0.0, 90.0, 1.0, 1.0).origin,
                             [0.0, 1.0, 0.0], atol=1e-6)


def test_camera_from_angles_pole_continuous():
  az = jnp.linspace(-180.0, 180.0, 9)
  top = jax.vmap(lambda a: cam_lib.camera_from_angles(90.0, a, 1.0, 1.0))(az)
  near = jax.vmap(lambda a: cam_lib.camera_from_angles(89.99, a, 1.0, 1.0))(az)
  assert np.all(np.isfinite(np.asarray(top.rotation)))
  np.testing.assert_allclose(top.rotation, near.rotation, atol=1e-3)
  for r in np.asarray(top.rotation):
    _check_rotation(r)


# ---- light ------------------------------------------------------------------------------------

def test_light(default_cams):
  cfg = get_config().light
  keys = jax.random.split(jax.random.PRNGKey(1), N)
  origins = jnp.asarray(default_cams.origin)
  light = np.asarray(jax.jit(jax.vmap(lambda k, o: cam_lib.sample_light(k, o, cfg)))(
      keys, origins))
  norm = np.linalg.norm(light, axis=-1)
  assert norm.min() >= 0.8 - 1e-5 and norm.max() <= 1.5 + 1e-5
  assert abs(norm.mean() - 1.15) < 0.01
  o = default_cams.origin
  o_norm = np.linalg.norm(o, axis=-1)
  cos = np.sum(light * o, -1) / (norm * o_norm)
  assert cos.mean() > 0.3
  # P(light on the camera's side) = P(N(|o|, 1) > 0) = Phi(|o| / std), averaged over cameras.
  phi = 0.5 * (1 + np.vectorize(math.erf)(o_norm / cfg.direction_std / math.sqrt(2)))
  expected = phi.mean()
  assert abs(np.mean(cos > 0) - expected) < 0.015, (np.mean(cos > 0), expected)


def test_light_zero_draw_is_finite():
  cfg = get_config().light
  cfg.direction_std = 0.0
  light = cam_lib.sample_light(jax.random.PRNGKey(0), jnp.zeros(3), cfg)
  assert np.all(np.isfinite(np.asarray(light)))


# ---- rays -------------------------------------------------------------------------------------

@pytest.mark.parametrize('height,width', [(5, 5), (7, 11), (64, 64), (33, 17)])
def test_generate_rays(height, width):
  c = cam_lib.sample_camera(jax.random.PRNGKey(7), _camera_cfg())
  origins, dirs = jax.jit(cam_lib.generate_rays, static_argnums=(1, 2))(c, height, width)
  origins, dirs = np.asarray(origins), np.asarray(dirs)
  r = np.asarray(c.rotation)
  right, up, back = r[:, 0], r[:, 1], r[:, 2]
  f = float(c.focal_mult) * width
  assert origins.shape == dirs.shape == (height, width, 3)
  np.testing.assert_allclose(origins, np.broadcast_to(np.asarray(c.origin), origins.shape))
  np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, atol=1e-6)

  def angle(v):
    return math.acos(min(1.0, float(np.dot(v, -back))))

  # Corner (top-left) ray: off-axis by (-(W/2 - 0.5), +(H/2 - 0.5)) / f.
  corner = dirs[0, 0]
  expected = math.atan(math.hypot(width / 2 - 0.5, height / 2 - 0.5) / f)
  assert abs(angle(corner) - expected) < 1e-5
  if height == width:
    assert abs(expected - math.atan(math.sqrt(2) * (width / 2 - 0.5) / f)) < 1e-12
  assert np.dot(corner, right) < 0 and np.dot(corner, up) > 0  # top-left is up and left
  assert np.dot(dirs[-1, -1], right) > 0 and np.dot(dirs[-1, -1], up) < 0
  if height % 2 == 1 and width % 2 == 1:
    np.testing.assert_allclose(dirs[height // 2, width // 2], -back, atol=1e-6)
    # Edge-centre rays: horizontal and vertical half-FOV share the focal (square pixels).
    assert abs(angle(dirs[height // 2, 0]) - math.atan((width / 2 - 0.5) / f)) < 1e-5
    assert abs(angle(dirs[0, width // 2]) - math.atan((height / 2 - 0.5) / f)) < 1e-5
  else:
    # Even sizes: the four centre rays are symmetric about the optical axis.
    mean = dirs[(height - 1) // 2:height // 2 + 1, (width - 1) // 2:width // 2 + 1].mean((0, 1))
    np.testing.assert_allclose(mean / np.linalg.norm(mean), -back, atol=1e-6)


def test_generate_rays_vmapped():
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  cfg = _camera_cfg()
  cams = jax.vmap(lambda k: cam_lib.sample_camera(k, cfg))(keys)
  o, d = jax.vmap(lambda c: cam_lib.generate_rays(c, 8, 6))(cams)
  assert o.shape == d.shape == (4, 8, 6, 3)
  np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-6)

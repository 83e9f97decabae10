"""The renderer against closed forms: slab opacity, shell depth, radial normals, Lambert shading."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax import render

OFF = -30.0  # raw density of empty space: exp(-30) ~ 1e-13.


def white(directions):
  return jnp.ones_like(directions)


def slab_field(tau, half_width):
  """Constant density tau for |x| < half_width, empty elsewhere; albedo red."""
  def field_fn(means, variance):
    del variance
    inside = jnp.abs(means[..., 0]) < half_width
    raw = jnp.where(inside, jnp.log(tau), OFF)
    return raw, jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0]), means.shape)
  return field_fn


def ball_field(radius, sharpness=50.0, inverted=False):
  """Smooth ball: raw = k (radius - |x|), so normals -grad(raw) point outward."""
  def field_fn(means, variance):
    del variance
    sdf = radius - jnp.linalg.norm(means, axis=-1)
    raw = sharpness * (-sdf if inverted else sdf)
    return raw, jnp.full(means.shape, 0.5)
  return field_fn


def render_one_ray(field_fn, origin, direction, settings, key=0):
  out = render.render_rays(field_fn, white, jnp.array([origin], jnp.float32),
                           jnp.array([direction], jnp.float32), jax.random.PRNGKey(key),
                           variance=jnp.float32(0.0), light_position=jnp.array([0.0, 0.0, 3.0]),
                           shading_mode=jnp.int32(render.ALBEDO), settings=settings)
  return jax.tree.map(lambda x: np.asarray(x[0]), out)


@pytest.mark.parametrize('tau', [0.5, 3.0, 10.0])
def test_constant_density_slab(tau):
  # Ray from x = -1 along +x: it spans [0, 2.4] inside the 1.4 sphere; with 240 uniform intervals
  # the slab |x| < 0.25 covers exactly 50 of them.
  settings = render.RenderSettings(near=0.0, num_samples=240, num_importance=0, randomized=False)
  out = render_one_ray(slab_field(tau, 0.25), [-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], settings)
  expected = 1.0 - np.exp(-tau * 0.5)
  np.testing.assert_allclose(out['acc'], expected, rtol=1e-5)
  # Colour: red slab over a white background.
  np.testing.assert_allclose(out['rgb'], [1.0, 1.0 - expected, 1.0 - expected], atol=1e-6)


@pytest.mark.parametrize('num_importance', [0, 32])
def test_uniform_density_any_sampling(num_importance):
  """Constant density everywhere: A = 1 - exp(-tau (t_far - t_near)) for any sample placement."""
  def uniform(means, variance):
    return jnp.full(means.shape[:-1], jnp.log(0.7)), jnp.zeros(means.shape)
  settings = render.RenderSettings(near=0.05, num_samples=16, num_importance=num_importance)
  out = render_one_ray(uniform, [0.3, 0.2, 0.1], [0.0, 0.6, 0.8], settings, key=3)
  o, d = np.array([0.3, 0.2, 0.1]), np.array([0.0, 0.6, 0.8])
  b, c = o @ d, o @ o - 1.4 ** 2
  t_far = -b + np.sqrt(b * b - c)
  np.testing.assert_allclose(out['acc'], 1 - np.exp(-0.7 * (t_far - 0.05)), rtol=1e-5)


@pytest.mark.parametrize('num_importance', [0, 64])
def test_thin_shell_depth(num_importance):
  """A thin opaque shell of radius 0.5 seen from distance 1.3: depth 0.8 along the centre ray."""
  def shell(means, variance):
    r = jnp.linalg.norm(means, axis=-1)
    return jnp.where(jnp.abs(r - 0.5) < 0.01, jnp.log(2000.0), OFF), jnp.zeros(means.shape)
  settings = render.RenderSettings(num_samples=256, num_importance=num_importance)
  out = render_one_ray(shell, [1.3, 0.0, 0.0], [-1.0, 0.0, 0.0], settings)
  assert out['acc'] > 0.999
  assert out['depth'] == pytest.approx(0.8, abs=0.012)


def test_normals_of_a_sphere_point_radially():
  points = jax.random.normal(jax.random.PRNGKey(0), (500, 3))
  points = points / np.linalg.norm(points, axis=-1, keepdims=True)
  points = points * jax.random.uniform(jax.random.PRNGKey(1), (500, 1), minval=0.1, maxval=1.3)
  _, _, normals = render.field_with_normals(ball_field(0.6), points, jnp.float32(0.0))
  radial = points / np.linalg.norm(points, axis=-1, keepdims=True)
  cosine = np.sum(np.asarray(normals) * radial, axis=-1)
  assert cosine.min() > 0.999


def test_ray_bounds_inside_outside_and_miss():
  origins = jnp.array([[0.5, 0.0, 0.0], [3.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
  directions = jnp.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  t_near, t_far = render.ray_bounds(origins, directions, 1.4, 0.05)
  np.testing.assert_allclose(t_near, [0.05, 1.6, t_near[2]], rtol=1e-6)
  np.testing.assert_allclose(t_far, [0.9, 4.4, t_near[2]], rtol=1e-6)


def test_sample_pdf_follows_the_weights():
  edges = jnp.linspace(0.0, 1.0, 11)[None]
  weights = jnp.zeros((1, 10)).at[0, 7].set(1.0)
  samples = render.sample_pdf(jax.random.PRNGKey(0), edges, weights, 1000, True)
  assert np.mean((samples >= 0.7) & (samples <= 0.8)) > 0.99
  uniform = render.sample_pdf(jax.random.PRNGKey(0), edges, jnp.ones((1, 10)), 1000, False)
  np.testing.assert_allclose(uniform[0], (np.arange(1000) + 0.5) / 1000, atol=1e-5)


def test_lambertian_shading_closed_form():
  albedo = jnp.array([[0.2, 0.4, 0.8]])
  normal = jnp.array([[0.0, 0.0, 1.0]])
  point = jnp.zeros((1, 3))
  light = jnp.array([1.0, 0.0, 1.0])  # 45 degrees from the normal
  cos = np.cos(np.pi / 4)
  lam = render.shade(albedo, normal, point, light, jnp.int32(render.LAMBERTIAN), 0.1, 0.9)
  np.testing.assert_allclose(lam, albedo * (0.1 + 0.9 * cos), rtol=1e-6)
  tex = render.shade(albedo, normal, point, light, jnp.int32(render.TEXTURELESS), 0.1, 0.9)
  np.testing.assert_allclose(tex, np.full((1, 3), 0.1 + 0.9 * cos), rtol=1e-6)
  alb = render.shade(albedo, normal, point, light, jnp.int32(render.ALBEDO), 0.1, 0.9)
  np.testing.assert_allclose(alb, albedo)
  behind = render.shade(albedo, normal, point, -light, jnp.int32(render.LAMBERTIAN), 0.1, 0.9)
  np.testing.assert_allclose(behind, albedo * 0.1, rtol=1e-6)


def test_orientation_penalises_normals_facing_away():
  settings = render.RenderSettings(num_samples=128, num_importance=0, randomized=False)
  outside = render_one_ray(ball_field(0.5), [1.3, 0, 0], [-1.0, 0, 0], settings)
  inside = render_one_ray(ball_field(0.5), [0.0, 0, 0], [1.0, 0, 0], settings)
  assert outside['acc'] > 0.99 and inside['acc'] > 0.99
  assert outside['orientation'] < 1e-6  # outward normals face the camera
  # From inside a solid ball the outward normals point along the ray: sum w (n.v)^2 ~ 1.
  assert inside['orientation'] > 0.99

"""Analytic scenes against closed forms: SDF values, normals, renders, the library."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax import camera, render
from dreamfusion_jax.toy import scenes

SETTINGS = render.RenderSettings(num_samples=64, num_importance=32, randomized=False)


def black(directions):
  return jnp.zeros_like(directions)


@functools.partial(jax.jit, static_argnums=(0, 5))  # A Scene is hashable: a static argument.
def _render_view(scene, elevation_deg, azimuth_deg, distance, focal_mult, size):
  cam = camera.camera_from_angles(elevation_deg, azimuth_deg, distance, focal_mult)
  return render.render_camera(scenes.scene_field(scene), black, cam, size, size,
                              jax.random.PRNGKey(0), variance=jnp.float32(0.0),
                              light_position=cam.origin, shading_mode=jnp.int32(render.ALBEDO),
                              settings=SETTINGS)


def render_view(scene, elevation_deg, azimuth_deg, distance, focal_mult, size=24):
  """Albedo render over black; dict of numpy arrays (size, size, ...)."""
  out = _render_view(scene, elevation_deg, azimuth_deg, distance, focal_mult, size)
  return jax.tree.map(np.asarray, out)


_primitive_sdf = jax.jit(scenes.primitive_sdf, static_argnums=0)
_sdf = jax.jit(scenes.sdf, static_argnums=0)
_analytic_normals = jax.jit(scenes.analytic_normals, static_argnums=0)


def sdf_of(prim, points):
  return np.asarray(_primitive_sdf(prim, jnp.asarray(points, jnp.float32)))


def normals_of(scene, points):
  return np.asarray(_analytic_normals(scene, jnp.asarray(points, jnp.float32)))


@functools.partial(jax.jit, static_argnums=0)
def _grads(prim, points):
  return jax.vmap(jax.grad(lambda p: scenes.primitive_sdf(prim, p)))(points)


def grad_norms(prim, points):
  return np.linalg.norm(np.asarray(_grads(prim, jnp.asarray(points))), axis=-1)


def random_points(n=4000, half=0.7, seed=0):
  return np.random.default_rng(seed).uniform(-half, half, (n, 3)).astype(np.float32)


# ----------------------------------------------------------------------------- SDF values


def test_sphere_sdf():
  prim = scenes.sphere(0.3, center=(0.1, 0.0, 0.0))
  np.testing.assert_allclose(sdf_of(prim, [[0.1, 0, 0], [0.6, 0, 0], [0.1, 0.3, 0]]),
                             [-0.3, 0.2, 0.0], atol=1e-6)


def test_box_sdf_faces_corner_and_rounding():
  sharp = scenes.box((0.2, 0.3, 0.4))
  pts = [[0, 0, 0], [0.5, 0, 0], [0, 0, -0.45], [0.3, 0.4, 0.5], [0.15, 0, 0]]
  np.testing.assert_allclose(sdf_of(sharp, pts), [-0.2, 0.3, 0.05, math.sqrt(0.03), -0.05],
                             atol=1e-6)
  rounded = scenes.box((0.2, 0.3, 0.4), rounding=0.05)
  # Faces keep the outer size; the corner is a sphere of radius 0.05 at (0.15, 0.25, 0.35).
  np.testing.assert_allclose(sdf_of(rounded, pts[:3] + [[0.3, 0.4, 0.5]]),
                             [-0.2, 0.3, 0.05, math.sqrt(3 * 0.15 ** 2) - 0.05], atol=1e-6)


def test_cylinder_sdf_side_cap_rim():
  prim = scenes.cylinder(0.25, 0.3, center=(0.0, 0.0, 0.1))
  pts = [[0, 0, 0.1], [0.5, 0, 0.1], [0, 0, 0.6], [0, 0, 0.35], [0.35, 0, 0.5], [0, 0.25, -0.1]]
  np.testing.assert_allclose(sdf_of(prim, pts), [-0.25, 0.25, 0.2, -0.05, math.sqrt(0.02), 0.0],
                             atol=1e-6)
  capsule = scenes.cylinder(0.2, 0.4, rounding=0.2)  # A capsule: hemispherical caps.
  np.testing.assert_allclose(sdf_of(capsule, [[0, 0, 0.5], [0.3, 0, 0.3], [0.3, 0, 0.0]]),
                             [0.1, math.hypot(0.3, 0.1) - 0.2, 0.1], atol=1e-6)


def test_cone_sdf_apex_base_and_side():
  prim = scenes.cone(0.3, 0.0, 0.3)  # Pointed, apex at z = 0.3, half-angle atan(0.5).
  sin_half = 1.0 / math.sqrt(5.0)
  pts = [[0, 0, 0.5], [0, 0, 0.2], [0, 0, -0.4], [0.15, 0, 0.0], [0.45, 0, -0.3],
         [0.0, 0.0, -0.25]]
  np.testing.assert_allclose(
      sdf_of(prim, pts),
      [0.2, -0.1 * sin_half, 0.1, 0.0, 0.15, -0.05], atol=1e-6)
  frustum = scenes.cone(0.3, 0.1, 0.2)
  np.testing.assert_allclose(sdf_of(frustum, [[0, 0, 0.3], [0.05, 0, 0.2], [0.2, 0, 0.0]]),
                             [0.1, 0.0, 0.0], atol=1e-6)
  # Rounding keeps the base plane and the slanted side, and lowers a pointed tip.
  rounded = scenes.cone(0.3, 0.0, 0.3, rounding=0.03)
  np.testing.assert_allclose(sdf_of(rounded, [[0, 0, -0.3], [0.15, 0, 0.0]]), [0.0, 0.0],
                             atol=1e-6)
  tip = sdf_of(rounded, [[0, 0, 0.3]])[0]
  np.testing.assert_allclose(tip, 0.03 / sin_half - 0.03, atol=1e-6)


def test_rotation_and_translation():
  lying = scenes.cylinder(0.1, 0.3, center=(0.0, 0.2, 0.0), rotation_deg=(0.0, 90.0, 0.0))
  np.testing.assert_allclose(sdf_of(lying, [[0.5, 0.2, 0], [0, 0.2, 0.3], [0, 0.2, 0]]),
                             [0.2, 0.2, -0.1], atol=1e-6)
  # Euler angles about x, then y, then z: (90, 90, 0) turns local x, y, z to world -z, x, -y.
  plank = scenes.box((0.3, 0.1, 0.05), rotation_deg=(90.0, 90.0, 0.0))
  np.testing.assert_allclose(sdf_of(plank, [[0, 0, 0.35], [0.2, 0, 0], [0, 0.1, 0]]),
                             [0.05, 0.1, 0.05], atol=1e-6)
  # +90 about y turns the cone's tip (local +z) to the front (+x), as the snowman's nose.
  nose = scenes.cone(0.04, 0.0, 0.08, rotation_deg=(0.0, 90.0, 0.0))
  assert sdf_of(nose, [[0.07, 0.035, 0.0]])[0] > 0.02
  assert sdf_of(nose, [[-0.07, 0.035, 0.0]])[0] < 0.0
  moved = scenes.translate(scenes.sphere(0.2), (0.1, 0.2, 0.3))
  np.testing.assert_allclose(sdf_of(moved, [[0.1, 0.2, 0.3]]), [-0.2], atol=1e-6)


@pytest.mark.parametrize('prim', [
    scenes.sphere(0.3, center=(0.05, 0.0, 0.1)),
    scenes.box((0.2, 0.3, 0.25), rounding=0.05),
    scenes.box((0.2, 0.3, 0.25), rotation_deg=(10.0, 20.0, 30.0)),
    scenes.cylinder(0.25, 0.3, rounding=0.05),
    scenes.cone(0.3, 0.0, 0.3),
    scenes.cone(0.29, 0.17, 0.1, rounding=0.07),
], ids=['sphere', 'round-box', 'turned-box', 'round-cylinder', 'cone', 'round-cone'])
def test_exact_sdfs_have_unit_gradient(prim):
  norms = grad_norms(prim, random_points())
  np.testing.assert_allclose(norms, 1.0, atol=1e-4)


# ----------------------------------------------------------------------------- normals


def test_normals_point_outward():
  ball = scenes.union(scenes.sphere(0.3, center=(0.1, -0.1, 0.0)))
  dirs = np.asarray(camera.safe_normalize(jax.random.normal(jax.random.PRNGKey(0), (200, 3))))
  pts = np.array([0.1, -0.1, 0.0]) + 0.3 * dirs
  np.testing.assert_allclose(normals_of(ball, pts), dirs, atol=1e-5)

  cube = scenes.union(scenes.box((0.2, 0.2, 0.2)))
  faces = np.array([[0.2, 0.05, -0.03], [-0.2, 0.1, 0.0], [0.0, 0.2, 0.1], [0.1, -0.2, 0.0],
                    [0.02, 0.03, 0.2], [0.0, -0.1, -0.2]], np.float32)
  axes = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
  for offset in (-0.01, 0.0, 0.01):  # just inside, on, and just outside each face
    np.testing.assert_allclose(
        normals_of(cube, faces + offset * axes), axes, atol=1e-6)

  can = scenes.union(scenes.cylinder(0.25, 0.3))
  phi = np.linspace(0.0, 2 * np.pi, 12, endpoint=False)
  side = np.stack([0.25 * np.cos(phi), 0.25 * np.sin(phi), np.linspace(-0.2, 0.2, 12)], -1)
  np.testing.assert_allclose(normals_of(can, side),
                             np.stack([np.cos(phi), np.sin(phi), 0 * phi], -1), atol=1e-6)

  cone = scenes.union(scenes.cone(0.3, 0.0, 0.3))
  np.testing.assert_allclose(normals_of(cone, [[0.15, 0.0, 0.0]]),
                             [[2 / math.sqrt(5), 0.0, 1 / math.sqrt(5)]], atol=1e-6)


@functools.partial(jax.jit, static_argnums=0)
def _surface_normals_both_ways(scene, pts):
  # Project points onto the surface along the normal (one Newton step of the exact parts).
  pts = pts - scenes.sdf(scene, pts)[:, None] * scenes.analytic_normals(scene, pts)
  raw, albedo, normals = render.field_with_normals(scenes.scene_field(scene), pts,
                                                   jnp.float32(0.0))
  return (pts, scenes.sdf(scene, pts), raw, albedo, normals, scenes.analytic_normals(scene, pts),
          scenes.albedo(scene, pts))


def test_normals_match_the_renderers():
  scene = scenes.get('toy hamburger')
  pts = jax.random.uniform(jax.random.PRNGKey(1), (3000, 3), minval=-0.6, maxval=0.6)
  pts, sdf, raw, albedo, normals, expected, expected_albedo = jax.tree.map(
      np.asarray, _surface_normals_both_ways(scene, pts))
  near = np.abs(sdf) < 0.01
  assert near.sum() > 200
  np.testing.assert_allclose(normals[near], expected[near], atol=1e-5)
  np.testing.assert_allclose(albedo, expected_albedo)
  k = scenes.DEFAULT_SHARPNESS
  np.testing.assert_allclose(raw, -k * sdf + scenes.default_surface_log_density(k),
                             rtol=1e-5, atol=1e-3)


def test_field_is_jittable_and_scene_is_static():
  scene = scenes.get('snowman')
  pts = random_points(64)
  field_fn = scenes.scene_field(scene)
  raw, rgb = jax.jit(field_fn)(jnp.asarray(pts), jnp.float32(0.1))
  assert raw.shape == (64,) and rgb.shape == (64, 3)
  np.testing.assert_allclose(jax.jit(scenes.sdf, static_argnums=0)(scene, pts),
                             scenes.sdf(scene, pts), atol=1e-6)


# ----------------------------------------------------------------------------- albedo, mark


def test_union_albedo_is_the_nearest_primitives_colour():
  scene = scenes.union(scenes.sphere(0.2, center=(-0.25, 0, 0), color=(1, 0, 0)),
                       scenes.box((0.1, 0.1, 0.1), center=(0.25, 0, 0), color=(0, 0, 1)))
  rgb = scenes.albedo(scene, jnp.array([[-0.3, 0, 0], [0.3, 0.05, 0], [-0.01, 0.3, 0.0]]))
  # The last point is 0.23 from the sphere's surface and 0.26 from the box's.
  np.testing.assert_allclose(rgb, [[1, 0, 0], [0, 0, 1], [1, 0, 0]])
  assert not np.any(scenes.mark_mask(scene, jnp.zeros((5, 3))))


def test_mark_region_and_translation():
  scene = scenes.get('toy hamburger')
  m = scene.mark
  ox, oy, _ = scenes.HAMBURGER_OFFSET
  front = jnp.array([[m.x_min + 0.05, m.center_yz[0], m.center_yz[1]]])
  # The mark only covers the top bun (primitive index m.primitive), on its +x side.
  assert scenes.nearest_primitive(scene, front)[0] == m.primitive
  assert bool(scenes.mark_mask(scene, front)[0])
  np.testing.assert_allclose(scenes.albedo(scene, front)[0], scenes.KETCHUP, atol=1e-6)
  back = front.at[0, 0].set(2 * ox - front[0, 0])
  assert not bool(scenes.mark_mask(scene, back)[0])
  moved = scenes.translate(scene, (0.0, 0.0, 0.2))
  assert bool(scenes.mark_mask(moved, front + jnp.array([0.0, 0.0, 0.2]))[0])
  assert not bool(scenes.mark_mask(moved, front)[0])  # the region moved with the object
  np.testing.assert_allclose(scenes.sdf(moved, front + jnp.array([0.0, 0.0, 0.2])),
                             scenes.sdf(scene, front), atol=1e-6)


# ----------------------------------------------------------------------------- renders


def test_sphere_render_silhouette_and_depth():
  # Radius and focal length chosen so no pixel centre lies within 0.15 px of the disc's edge.
  radius, distance, focal_mult, size = 0.34, 1.3, 0.9, 24
  out = render_view(scenes.union(scenes.sphere(radius)), 20.0, 30.0, distance, focal_mult, size)
  # Pinhole projection of a centred sphere: a disc of radius f tan(asin(R / D)) pixels.
  disc_px = focal_mult * size * math.tan(math.asin(radius / distance))
  centres = np.arange(size) + 0.5 - size / 2
  centre_dist = np.hypot(centres[:, None], centres[None, :])
  inside = centre_dist < disc_px
  silhouette = out['acc'] > 0.5
  assert abs(int(silhouette.sum()) - int(inside.sum())) <= 4
  away = np.abs(centre_dist - disc_px) > 0.5
  np.testing.assert_array_equal(silhouette[away], inside[away])  # and in the right place
  # Depth of the four central pixels: distance - radius, corrected for their rays being 0.7 px
  # off axis (cos(theta) D - sqrt(R^2 - D^2 sin(theta)^2), about 0.962 rather than 0.96).
  theta = math.atan(math.sqrt(0.5) / (focal_mult * size))
  expected = (distance * math.cos(theta)
              - math.sqrt(radius ** 2 - (distance * math.sin(theta)) ** 2))
  centre_depth = out['depth'][size // 2 - 1:size // 2 + 1, size // 2 - 1:size // 2 + 1]
  np.testing.assert_allclose(centre_depth, expected, rtol=0.01)
  assert abs(expected - (distance - radius)) < 0.003



@functools.partial(jax.jit, static_argnums=(0, 1))
def _head_on_ray(sharpness, surface_log_density):
  """A ray along -x from (1.3, 0.02, 0.01) onto the face x = 0.3 of a box."""
  field_fn = scenes.scene_field(scenes.union(scenes.box((0.3, 0.3, 0.3))), sharpness,
                                surface_log_density)
  settings = render.RenderSettings(num_samples=256, num_importance=64, randomized=False)
  return render.render_rays(field_fn, black, jnp.array([[1.3, 0.02, 0.01]]),
                            jnp.array([[-1.0, 0.0, 0.0]]), jax.random.PRNGKey(0),
                            variance=jnp.float32(0.0), light_position=jnp.zeros(3),
                            shading_mode=jnp.int32(render.ALBEDO), settings=settings)


@pytest.mark.parametrize('sharpness', [100.0, 300.0])
@pytest.mark.parametrize('surface_log_density', [0.0, None])
def test_head_on_depth_bias_closed_form(sharpness, surface_log_density):
  """raw = k (-sdf) + b ends a head-on ray (ln k - gamma - b) / k behind the surface."""
  out = _head_on_ray(sharpness, surface_log_density)
  b = (scenes.default_surface_log_density(sharpness) if surface_log_density is None
       else surface_log_density)
  bias = (math.log(sharpness) - 0.5772156649 - b) / sharpness
  assert float(out['depth'][0]) - 1.0 == pytest.approx(bias, abs=5e-4)
  if surface_log_density is None and sharpness == scenes.DEFAULT_SHARPNESS:
    assert abs(bias) < 0.006

def mark_pixels(out):
  close = np.max(np.abs(out['rgb'] - np.asarray(scenes.KETCHUP)), axis=-1) < 0.15
  return close & (out['acc'] > 0.5)


def test_hamburger_mark_is_seen_from_the_front_only():
  scene = scenes.get('toy hamburger')
  front = render_view(scene, 10.0, 0.0, 1.3, 1.0)
  back = render_view(scene, 10.0, 180.0, 1.3, 1.0)
  assert mark_pixels(front).sum() >= 4
  assert mark_pixels(back).sum() == 0
  assert (back['acc'] > 0.5).sum() > 50  # the back view does see the object

  # Off-centre and asymmetric: the stack sits toward -y (image left in the front view), the
  # pickle sticks out there, so the silhouette is not mirror-symmetric about the centre column.
  silhouette = front['acc'] > 0.5
  cols = np.nonzero(silhouette)[1] + 0.5
  assert cols.mean() < 12.0 - 0.75
  assert np.sum(silhouette != silhouette[:, ::-1]) >= 15


# ----------------------------------------------------------------------------- the library


def test_library_objects_fit_and_are_not_empty():
  assert len(scenes.LIBRARY) >= 7 and 'toy hamburger' in scenes.LIBRARY
  sphere_pts = np.asarray(camera.safe_normalize(
      jax.random.normal(jax.random.PRNGKey(2), (4000, 3)))) * 0.7
  g = np.linspace(-0.8, 0.8, 33, dtype=np.float32)
  grid = np.stack(np.meshgrid(g, g, g, indexing='ij'), -1).reshape(-1, 3)
  for name in scenes.names():
    scene = scenes.get(name)
    assert np.min(_sdf(scene, jnp.asarray(sphere_pts))) > 0.05, name
    values = np.asarray(_sdf(scene, jnp.asarray(grid)))
    assert np.sum(values < 0) > 50, name
    assert np.linalg.norm(grid[values < 0], axis=-1).max() < 0.6, name
    assert all(w.isalpha() for w in name.split()), name


def test_hamburger_is_off_centre_with_one_mark():
  scene = scenes.get('toy hamburger')
  assert scene.mark is not None and scene.mark.color == scenes.KETCHUP
  g = np.linspace(-0.6, 0.6, 41, dtype=np.float32)
  grid = np.stack(np.meshgrid(g, g, g, indexing='ij'), -1).reshape(-1, 3)
  solid = grid[np.asarray(_sdf(scene, jnp.asarray(grid))) < 0]
  centroid = solid.mean(axis=0)
  assert centroid[0] > 0.05 and centroid[1] < -0.1
  # No other part is close to the mark colour.
  colors = np.array([p.color for p in scene.primitives])
  assert np.min(np.max(np.abs(colors - np.asarray(scenes.KETCHUP)), axis=-1)) > 0.3


def test_get_names_the_available_scenes():
  assert scenes.get('red ball') is scenes.LIBRARY['red ball']
  with pytest.raises(KeyError, match='toy hamburger'):
    scenes.get('hamburger')


def test_invalid_descriptions_are_rejected():
  with pytest.raises(ValueError, match='rounding'):
    scenes.box((0.1, 0.2, 0.3), rounding=0.2)
  with pytest.raises(ValueError, match='color'):
    scenes.sphere(0.2, color=(2.0, 0.0, 0.0))
  with pytest.raises(ValueError, match='too large'):
    scenes.cone(0.1, 0.0, 0.3, rounding=0.29)
  with pytest.raises(ValueError, match='one mark'):
    mark = scenes.Mark((1, 0, 0), 0.0, (0.0, 0.0), (0.1, 0.1))
    scenes.union(scenes.union(scenes.sphere(0.1), mark=mark),
                 scenes.union(scenes.sphere(0.1), mark=mark))

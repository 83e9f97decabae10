"""The mesh path against analytic fields: surface, colours, files, the level, the empty field.

Every field goes through mesh.extract, the function run_render.py calls on a checkpoint.
"""
import os

import jax.numpy as jnp
import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from dreamfusion_jax import mesh, pictures, render
from dreamfusion_jax.toy import scenes
from dreamfusion_jax.errors import EmptyFieldError

GRID = 64  # Grid points per axis: spacing 2.8 / 63 = 0.044.
SPACING = 2.0 * render.RenderSettings().radius / (GRID - 1)
CHUNK = 1024
RED = (0.9, 0.1, 0.1)

SPHERE = scenes.union(scenes.sphere(0.4, color=(0.3, 0.4, 0.8)),
                      mark=scenes.Mark(RED, x_min=0.2, center_yz=(0.0, 0.05),
                                       half_size_yz=(0.15, 0.1)))
BOX = scenes.union(scenes.box((0.3, 0.2, 0.15), center=(0.25, -0.2, 0.1), color=(0.2, 0.7, 0.3)))


def white(directions):
  return jnp.ones_like(directions)


def subject_of(field_fn):
  return pictures.field_subject(field_fn, white, render.RenderSettings())


@pytest.fixture(scope='module')
def meshes():
  return {name: mesh.extract(subject_of(scenes.scene_field(scene)), GRID, CHUNK)
          for name, scene in (('sphere', SPHERE), ('box', BOX))}


def sample_sphere(n, rng):
  v = rng.normal(size=(n, 3))
  return 0.4 * v / np.linalg.norm(v, axis=-1, keepdims=True)


def sample_box(n, rng, half=np.array([0.3, 0.2, 0.15]), center=np.array([0.25, -0.2, 0.1])):
  """Uniform points on the box's six faces (area-weighted)."""
  areas = np.array([half[1] * half[2], half[0] * half[2], half[0] * half[1]] * 2)
  face = rng.choice(6, size=n, p=areas / areas.sum())
  axis, sign = face % 3, np.where(face < 3, 1.0, -1.0)
  p = rng.uniform(-1.0, 1.0, size=(n, 3)) * half
  p[np.arange(n), axis] = sign * half[axis]
  return p + center


def chamfer(m: mesh.Mesh, scene, truth_points, n=50_000):
  """Symmetric Chamfer distance: mean over both directions of the distance to the other surface.

  Mesh -> truth: |sdf| (exact) at points sampled on the mesh's faces. Truth -> mesh: distance to
  the nearest of the mesh samples (an upper bound, ~ their spacing, 0.005 here).
  """
  tm = trimesh.Trimesh(m.vertices, m.faces, process=False)
  samples, _ = trimesh.sample.sample_surface(tm, n, seed=0)
  to_truth = np.abs(np.asarray(scenes.sdf(scene, jnp.asarray(samples, jnp.float32))))
  to_mesh, _ = cKDTree(samples).query(truth_points)
  return 0.5 * (to_truth.mean() + to_mesh.mean()), to_truth.max()


@pytest.mark.parametrize('name,scene,sampler,volume', [
    ('sphere', SPHERE, sample_sphere, 4.0 / 3.0 * np.pi * 0.4 ** 3),
    ('box', BOX, sample_box, 0.6 * 0.4 * 0.3)])
def test_mesh_is_the_analytic_surface(meshes, name, scene, sampler, volume):
  m = meshes[name]
  dist, worst = chamfer(m, scene, sampler(20_000, np.random.default_rng(0)))
  print(f'{name}: Chamfer {dist:.4f} = {dist / SPACING:.3f} grid spacings, max |sdf| on the mesh '
        f'{worst:.4f} = {worst / SPACING:.2f} spacings, level {m.level:.2f}, '
        f'{len(m.vertices)} vertices')
  assert dist < 0.2 * SPACING
  assert worst < 0.75 * SPACING  # Marching cubes cuts the box's edges and corners.
  tm = trimesh.Trimesh(m.vertices, m.faces, process=False)
  assert tm.is_watertight
  # Faces wind outward (a positive signed volume), and the volume is the solid's, less a skin:
  # the rendered surface lies ~0.004 inside the zero set (the level is what renders see) and
  # marching cubes cuts the box's edges (-8% for this thin box at 64^3, -3% for the sphere).
  assert tm.volume == pytest.approx(volume, rel=0.1)


def test_vertex_colors_match_the_analytic_albedo(meshes):
  for name, scene in (('sphere', SPHERE), ('box', BOX)):
    m = meshes[name]
    # The albedo at each vertex's nearest true-surface point: v - sdf(v) grad sdf(v).
    v = jnp.asarray(m.vertices)
    on_surface = v - scenes.sdf(scene, v)[:, None] * scenes.analytic_normals(scene, v)
    truth = np.round(np.asarray(scenes.albedo(scene, on_surface)) * 255).astype(np.uint8)
    same = np.all(m.colors == truth, axis=-1)
    print(f'{name}: {same.mean():.4f} of the vertex colours are the analytic albedo')
    if name == 'sphere':  # Vertices on the mark's border may fall either side of it.
      red = np.all(m.colors == np.round(np.array(RED) * 255), axis=-1)
      assert 0.01 < red.mean() < 0.2 and m.vertices[red, 0].min() > 0.19
      assert same.mean() > 0.97
    else:
      assert same.all()


def test_files_load_back_upright_with_colours(meshes, tmp_path):
  m = meshes['box']
  paths = mesh.write(m, str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == ['mesh.glb', 'mesh.obj']
  for ext in ('glb', 'obj'):
    loaded = trimesh.load(paths[ext], force='mesh', process=False)
    assert len(loaded.faces) == len(m.faces)
    # glTF is +Y up: the file's Y is the world's z, its Z the world's x (the front).
    np.testing.assert_allclose(loaded.vertices, m.vertices[:, [1, 2, 0]], atol=1e-5)
    np.testing.assert_array_equal(loaded.visual.vertex_colors[:, :3], m.colors)


@pytest.mark.parametrize('offset', [-3.0, 0.0, 4.0])
def test_level_follows_the_rendered_surface_at_any_density_scale(offset):
  """A soft ball (a fuzzy NeRF's scale), its density multiplied by e^offset.

  In a soft field the rendered surface is not one level set: head-on rays stop deeper than the
  silhouette (acc = 0.5) lies. The mesh must lie between the two, at every density scale. A fixed
  threshold cannot: density 10 (the PyTorch ports' default) is never reached at offset -3,
  although the renders show an opaque ball.
  """
  k, radius = 15.0, 0.35
  field_fn = lambda x, v: (k * (radius - jnp.linalg.norm(x, axis=-1)) + offset,
                           jnp.full(x.shape, 0.5))
  subject = subject_of(field_fn)
  m = mesh.extract(subject, GRID, CHUNK)
  size, distance = 65, 1.3
  out = pictures.make_camera_fn(subject, CHUNK)(mesh.level_cameras(distance, 1.0)[0], size,
                                                np.zeros(3))
  head_on = distance - out['depth'][size // 2, size // 2]  # The centre pixel sees the origin.
  # Silhouette radius from the opaque area: image radius r_px, tan(theta) = r_px / f_px.
  r_px = np.sqrt(np.sum(out['acc'] >= 0.5) / np.pi)
  silhouette = distance * np.sin(np.arctan(r_px / size))
  mesh_radius = np.linalg.norm(m.vertices, axis=-1)
  print(f'offset {offset}: level {m.level:.2f}; mesh radius {mesh_radius.mean():.4f} '
        f'+- {mesh_radius.std():.4f}; rendered head-on {head_on:.4f}, silhouette {silhouette:.4f}')
  assert head_on - 0.25 * SPACING < mesh_radius.min()
  assert mesh_radius.max() < silhouette + 0.25 * SPACING
  if offset == -3.0:
    assert k * radius + offset < np.log(10.0)


def test_empty_field_raises_and_writes_nothing(tmp_path):
  empty = lambda x, v: (jnp.full(x.shape[:-1], -20.0), jnp.full(x.shape, 0.5))
  with pytest.raises(EmptyFieldError, match='empty'):
    mesh.extract(subject_of(empty), 16, CHUNK)
  with pytest.raises(EmptyFieldError):  # A level no grid point reaches.
    mesh.extract(subject_of(scenes.scene_field(SPHERE)), 16, CHUNK, level=1e4)
  nothing = mesh.Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64),
                      np.zeros((0, 3), np.uint8), 0.0)
  with pytest.raises(EmptyFieldError):
    mesh.write(nothing, str(tmp_path))
  assert os.listdir(tmp_path) == []

"""The baked texture against analytic albedo: surface points, the mark, chart edges, the files.

The texture is read as the file formats say (OBJ: v up, the image's row 0 at v = 1; glTF: the
origin at the image's top left), by this file's own bilinear lookup, never by texture.py's.
"""
import io
import json
import os
import struct

import jax.numpy as jnp
import numpy as np
import pytest
import trimesh
from PIL import Image

from dreamfusion_jax import mesh, pictures, texture
from dreamfusion_jax.toy import scenes
from dreamfusion_jax.errors import EmptyFieldError, SetupError
from tests.test_mesh import CHUNK, RED, SPHERE, subject_of

GRID = 64  # The mesh of the 0.4 sphere: ~3k faces.
SIZE = 256  # ~50k texels cover it: a texel is ~0.006 world units across.
_PLAIN = scenes.scene_field(scenes.union(scenes.sphere(0.4)))


def gradient_albedo(x):
  """A colour that changes everywhere (0.5 +- 1.2 x per channel), so every chart and every
  texel of a chart's border has its own colour to get right. x (..., 3) -> (..., 3)."""
  return 0.5 + 1.2 * x * jnp.array([1.0, -1.0, 1.0])


def gradient_field(x, variance):
  raw, _ = _PLAIN(x, variance)
  return raw, gradient_albedo(x)


@pytest.fixture(scope='module')
def baked():
  """{'mark': SPHERE, 'gradient': the sphere in gradient_albedo}: (Mesh, TexturedMesh,
  point_fn)."""
  out = {}
  for name, field_fn in (('mark', scenes.scene_field(SPHERE)), ('gradient', gradient_field)):
    subject = subject_of(field_fn)
    point_fn = pictures.make_point_fn(subject, mesh.POINTS_PER_RAY * CHUNK)
    m = mesh.extract(subject, GRID, CHUNK, point_fn=point_fn)
    out[name] = m, texture.bake(m, point_fn, SIZE), point_fn
  return out


def bilinear(image, uv):
  """The image (S, S, 3) uint8 sampled at OBJ-convention uv (N, 2), clamped at the borders:
  texel (row r, column c) is centred at ((c + 0.5) / S, 1 - (r + 0.5) / S). Returns (N, 3)."""
  size = image.shape[0]
  image = image.astype(np.float64) / 255.0
  x, y = uv[:, 0] * size - 0.5, (1.0 - uv[:, 1]) * size - 0.5
  x0, y0 = np.floor(x), np.floor(y)
  fx, fy = (x - x0)[:, None], (y - y0)[:, None]
  at = lambda r, c: image[np.clip(r, 0, size - 1).astype(int), np.clip(c, 0, size - 1).astype(int)]
  return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
          + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))


def surface_samples(vertices, faces, uv, n, rng):
  """n uniform points on the faces (area-weighted) with their uvs: (points (n, 3), uv (n, 2))."""
  corners = vertices[faces]
  area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]),
                        axis=-1)
  face = rng.choice(len(faces), size=n, p=area / area.sum())
  r1, r2 = rng.uniform(size=(2, n))
  s = np.sqrt(r1)
  bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=-1)
  return (np.einsum('nk,nkd->nd', bary, corners[face]),
          np.einsum('nk,nkd->nd', bary, uv[faces][face]))


def chart_edge_samples(textured, rng):
  """A random point on every chart-boundary edge (an edge of one face only: the atlas splits the
  vertices of a seam, so both sides' edges are boundary edges): (points, uv)."""
  edges = np.sort(textured.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
  unique, count = np.unique(edges, axis=0, return_counts=True)
  boundary = unique[count == 1]
  t = rng.uniform(size=(len(boundary), 1))
  mix = lambda a: a[boundary[:, 0]] * (1 - t) + a[boundary[:, 1]] * t
  return mix(textured.vertices), mix(textured.uv)


def test_rasterize_covers_the_texels_whose_centres_are_inside():
  # The lower-left half of the square, u + v <= 1: the centre ((c + .5) / 16, 1 - (r + .5) / 16)
  # is in it exactly when c <= r (the diagonal's centres lie on the edge, and count).
  uv = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
  for candidates in (texture.CANDIDATES, 7):  # One batch, or many of a few texels each.
    parts = list(texture.rasterize(uv, np.array([[0, 1, 2]]), 16, candidates))
    texel = np.concatenate([p[0] for p in parts])
    bary = np.concatenate([p[2] for p in parts])
    row, col = np.divmod(texel, 16)
    assert len(texel) == len(set(texel)) == 16 * 17 // 2 and np.all(col <= row)
    centre = np.stack([(col + 0.5) / 16, 1.0 - (row + 0.5) / 16], axis=-1)
    np.testing.assert_allclose(bary @ uv, centre, atol=1e-12)


def test_textured_faces_are_the_mesh_faces(baked):
  m, t, _ = baked['mark']
  print(f'{len(m.vertices)} vertices -> {len(t.vertices)} after the seams are split')
  np.testing.assert_array_equal(t.vertices[t.faces], m.vertices[m.faces])  # Order and winding.
  assert len(t.vertices) > len(m.vertices) and t.uv.shape == (len(t.vertices), 2)
  assert 0.0 <= t.uv.min() and t.uv.max() <= 1.0 and t.texture.shape == (SIZE, SIZE, 3)


def test_texture_is_the_albedo_at_surface_points(baked):
  _, t, _ = baked['gradient']
  points, uv = surface_samples(t.vertices, t.faces, t.uv, 20_000, np.random.default_rng(0))
  truth = np.asarray(gradient_albedo(jnp.asarray(points)))
  error = np.abs(bilinear(t.texture, uv) - truth)
  flipped = np.abs(bilinear(t.texture, uv * [1, -1] + [0, 1]) - truth)
  print(f'|texture - albedo|: mean {error.mean():.4f}, 99.9% {np.quantile(error, 0.999):.4f}, '
        f'max {error.max():.4f}; read with v flipped: mean {flipped.mean():.3f}')
  # uint8 rounding is 0.002; a texel is ~0.006 across, and the colour changes up to 1.2 per unit.
  assert error.mean() < 0.004 and error.max() < 0.02
  assert flipped.mean() > 0.1  # The lookup convention matters: a flipped v reads other charts.


def test_mark_lands_where_the_mark_is(baked):
  _, t, _ = baked['mark']
  points, uv = surface_samples(t.vertices, t.faces, t.uv, 20_000, np.random.default_rng(1))
  red = np.all(np.abs(bilinear(t.texture, uv) - RED) < 0.05, axis=-1)
  # More than 3 texels (0.02) inside or outside the mark's border in y and z (its x bound does
  # not cut a 0.4 sphere in this box): every sample is red, none is.
  mark, margin = SPHERE.mark, 0.02
  dy, dz = (np.abs(points[:, i] - c) - h
            for i, c, h in ((1, mark.center_yz[0], mark.half_size_yz[0]),
                            (2, mark.center_yz[1], mark.half_size_yz[1])))
  front = points[:, 0] > mark.x_min
  inside = front & (np.maximum(dy, dz) < -margin)
  outside = ~front | (np.maximum(dy, dz) > margin)
  print(f'{red.mean():.4f} of the samples red; {inside.sum()} deep inside the mark, '
        f'{red[inside].mean():.4f} red; {outside.sum()} well outside, {red[outside].mean():.5f}')
  assert inside.sum() > 200 and red[inside].all()
  assert not red[outside].any()
  analytic = np.asarray(scenes.mark_mask(SPHERE, jnp.asarray(points)))
  assert abs(red.mean() - analytic.mean()) < 0.2 * analytic.mean()


def test_chart_edges_keep_their_chart_colour(baked):
  m, t, point_fn = baked['gradient']
  points, uv = chart_edge_samples(t, np.random.default_rng(2))
  truth = np.asarray(gradient_albedo(jnp.asarray(points)))
  error = np.abs(bilinear(t.texture, uv) - truth).max(axis=-1)
  # Without the gutter the lookups at the edges mix in the background (the mean colour).
  bare = texture.bake(m, point_fn, SIZE, rings=0)
  bare_error = np.abs(bilinear(bare.texture, uv) - truth).max(axis=-1)
  print(f'{len(points)} chart-edge samples: max |texture - albedo| {error.max():.4f} '
        f'(mean {error.mean():.4f}); without the gutter {bare_error.max():.3f} '
        f'(mean {bare_error.mean():.3f})')
  assert len(points) > 100
  assert error.max() < 0.02
  assert bare_error.max() > 0.1


def read_glb(path):
  """(TEXCOORD_0 (V, 2) as stored, the embedded image (H, W, C)) of a one-mesh .glb, read raw."""
  with open(path, 'rb') as f:
    data = f.read()
  json_length, = struct.unpack('<I', data[12:16])
  gltf = json.loads(data[20:20 + json_length])
  binary = data[28 + json_length:]

  def view(index):
    v = gltf['bufferViews'][index]
    return binary[v.get('byteOffset', 0):v.get('byteOffset', 0) + v['byteLength']]

  accessor = gltf['accessors'][gltf['meshes'][0]['primitives'][0]['attributes']['TEXCOORD_0']]
  assert accessor['componentType'] == 5126 and accessor['type'] == 'VEC2'  # float32 pairs.
  uv = np.frombuffer(view(accessor['bufferView']), np.float32,
                     2 * accessor['count'], accessor.get('byteOffset', 0)).reshape(-1, 2)
  return uv, np.asarray(Image.open(io.BytesIO(view(gltf['images'][0]['bufferView']))))


def read_obj_uv(path):
  """The .obj's vt lines (V', 2), its mtllib and usemtl names."""
  with open(path) as f:
    lines = [line.split() for line in f if line.strip()]
  vt = np.array([[float(x) for x in line[1:3]] for line in lines if line[0] == 'vt'])
  names = {line[0]: line[1] for line in lines if line[0] in ('mtllib', 'usemtl')}
  return vt, names['mtllib'], names['usemtl']


def test_files_load_back_with_the_texture(baked, tmp_path):
  _, t, _ = baked['gradient']
  paths = texture.write(t, str(tmp_path))
  names = ['mesh_textured.glb', 'mesh_textured.mtl', 'mesh_textured.obj', 'mesh_textured.png']
  assert sorted(os.listdir(tmp_path)) == names  # No temporaries left behind.
  assert sorted(os.path.basename(p) for p in paths.values()) == names
  for ext in ('glb', 'obj'):
    loaded = trimesh.load(paths[f'textured_{ext}'], force='mesh', process=False)
    material = loaded.visual.material
    image = material.baseColorTexture if ext == 'glb' else material.image
    assert image.size == (SIZE, SIZE)
    np.testing.assert_array_equal(np.asarray(image)[..., :3], t.texture)
    np.testing.assert_array_equal(loaded.faces, t.faces)
    # The files' frame is mesh.py's: (y, z, x) of the world's (x, y, z).
    np.testing.assert_allclose(loaded.vertices, t.vertices[:, [1, 2, 0]], atol=1e-6)
    np.testing.assert_allclose(loaded.visual.uv, t.uv, atol=1e-6)
    assert 0.0 <= loaded.visual.uv.min() and loaded.visual.uv.max() <= 1.0
  # As the formats store them: glTF's v runs down the image, OBJ's up.
  glb_uv, glb_image = read_glb(paths['textured_glb'])
  np.testing.assert_allclose(glb_uv, t.uv * [1, -1] + [0, 1], atol=1e-6)
  np.testing.assert_array_equal(glb_image[..., :3], t.texture)
  vt, mtllib, usemtl = read_obj_uv(paths['textured_obj'])
  with open(tmp_path / mtllib) as f:
    mtl = f.read().split()
  assert mtllib == 'mesh_textured.mtl' and mtl[mtl.index('newmtl') + 1] == usemtl
  png = np.asarray(Image.open(tmp_path / mtl[mtl.index('map_Kd') + 1]))
  # The OBJ's own uvs on its own image give the albedo (v up, the image's row 0 the top).
  points, uv = surface_samples(t.vertices, t.faces, vt, 5_000, np.random.default_rng(3))
  error = np.abs(bilinear(png, uv) - np.asarray(gradient_albedo(jnp.asarray(points))))
  assert error.max() < 0.03


@pytest.mark.parametrize('size', [8, 0, -16, 100, 1000, 16384, 256.0, True])
def test_bad_sizes_are_refused(size):
  assert not texture.valid_size(size)
  with pytest.raises(SetupError, match='power of two'):
    texture.check_size(size)


def test_good_sizes_pass():
  for size in (16, np.int64(512), texture.DEFAULT_SIZE, 8192):
    assert texture.valid_size(size)
    texture.check_size(size)


def test_empty_mesh_raises_and_bakes_nothing():
  nothing = mesh.Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64),
                      np.zeros((0, 3), np.uint8), 0.0)
  with pytest.raises(EmptyFieldError):
    texture.bake(nothing, lambda p: None, SIZE)

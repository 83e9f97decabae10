"""A textured mesh: the mesh's surface unwrapped into a texture atlas, the albedo baked into it.

1. Unwrap (xatlas): the surface is cut into charts, each flattened and packed into the unit
   square at `size` texels across with PADDING texels between charts. Vertices on a cut are
   duplicated (one copy per chart), so the textured mesh has more vertices than the mesh; its
   faces are the mesh's faces, in the same order and winding.
2. Rasterise: every texel whose centre lies in a triangle of a chart is that triangle's point
   at the centre's barycentric coordinates; the field's albedo there is the texel's colour.
3. Gutter: texels no triangle covers take the mean of their covered neighbours, GUTTER_RINGS
   rings out, and the rest the mean albedo (dilate).
4. Files (write): NAME.obj + NAME.mtl + NAME.png, and NAME.glb with the texture embedded; the
   files' frame is mesh.py's (file = world @ mesh.Y_UP.T, glTF's +Y up, front +Z).

UV convention (OBJ's, and trimesh's): u to the right, v up; the texture image's row 0 is its top,
v = 1. Texel (row r, column c) has its centre at uv ((c + 0.5) / size, 1 - (r + 0.5) / size).
glTF puts the origin of its texture coordinates at the image's top left instead, so a .glb holds
(u, 1 - v); trimesh's glTF exporter makes that flip (tests/test_texture.py reads it raw).
"""
import os
from typing import Callable, Dict, Iterator, NamedTuple, Tuple

import numpy as np

from dreamfusion_jax import mesh as mesh_lib
from dreamfusion_jax.errors import EmptyFieldError, SetupError

# Texels per side. At 1024, 585k texels cover the mesh of a 0.4 sphere on run_render.py's 128^3
# grid (12k faces; measured): ~50 a face, ~0.002 world units a texel, a tenth of a grid cell.
DEFAULT_SIZE = 1024
MIN_SIZE, MAX_SIZE = 16, 8192  # 8192^2 is already 67M albedo queries and a 200 MB image.
# Texels between charts in the atlas. A bilinear lookup inside a chart reads the four texels
# around it, each within one texel of the chart; while the next chart is more than two texels
# away, the first ring of the gutter (dilate) fills those from their own chart alone. 4 in
# xatlas' atlas is ~3.4 in the texture at 1024 (measured; xatlas' atlas comes out larger than
# asked, see unwrap), but less at small sizes on meshes of many charts (2.2 at 256 and 0.9 at 64
# for that sphere's 12k faces and 500 charts).
PADDING = 4
# Rings of gutter texels filled from their covered neighbours. Bilinear lookups need one; each
# mipmap level a viewer builds halves the texture, and 8 rings keep chart borders clean to level
# 3 (an eighth of the size). Beyond them, the mean albedo rather than black.
GUTTER_RINGS = 8
# Candidate (triangle, texel) pairs tested at a time: ~150 bytes each at the peak (measured), so
# ~160 MB; a 1024^2 bake of a 128^3 grid's mesh has ~2M candidates.
CANDIDATES = 1 << 20
# A texel centre on a triangle's edge counts for it up to this barycentric tolerance, so centres
# exactly on the edge shared by two triangles are covered (by either: the same 3-D point).
EDGE_EPS = 1e-6


class TexturedMesh(NamedTuple):
  vertices: np.ndarray  # (V', 3) float32 world coordinates; V' >= the mesh's V (seams split).
  faces: np.ndarray  # (F, 3) int64 indices into vertices: the mesh's faces, same order/winding.
  uv: np.ndarray  # (V', 2) float32 in [0, 1], OBJ convention (v up; module docstring).
  texture: np.ndarray  # (size, size, 3) uint8 albedo, row 0 at v = 1.


SIZES = f'a power of two from {MIN_SIZE} to {MAX_SIZE} (e.g. {DEFAULT_SIZE})'


def valid_size(size) -> bool:
  """Whether size is SIZES. A power of two: WebGL 1 cannot mipmap or repeat other sizes (OpenGL
  ES 2.0, 3.7.11 and 3.8.2; the glTF 2.0 spec's note on non-power-of-two textures, in Samplers),
  so web viewers resize them; under 16 texels no chart is legible."""
  return (isinstance(size, (int, np.integer)) and not isinstance(size, bool)
          and MIN_SIZE <= size <= MAX_SIZE and size & (size - 1) == 0)


def check_size(size) -> None:
  """SetupError unless valid_size(size)."""
  if not valid_size(size):
    raise SetupError(f'texture size {size!r} must be {SIZES}')


def unwrap(vertices: np.ndarray, faces: np.ndarray, size: int,
           padding: int = PADDING) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """xatlas' charts of a mesh, packed for a size^2 texture.

  Args: vertices (V, 3), faces (F, 3).
  Returns: vmapping (V',) the mesh vertex of each atlas vertex, faces (F, 3) into the atlas
    vertices (the input faces' order and winding), uv (V', 2) in [0, 1], v up.
  """
  import xatlas
  atlas = xatlas.Atlas()
  atlas.add_mesh(np.ascontiguousarray(vertices, np.float32),
                 np.ascontiguousarray(faces, np.uint32))
  pack = xatlas.PackOptions()
  # xatlas treats resolution as a target (it came out 5-20% larger on our meshes); its uvs are
  # normalised by the atlas' own width and height, so they span [0, 1] all the same, and the
  # padding shrinks by that ratio when the unit square is drawn at `size`.
  pack.resolution, pack.padding, pack.bilinear = size, padding, True
  atlas.generate(xatlas.ChartOptions(), pack)
  vmapping, indices, uv = atlas[0]
  return (vmapping.astype(np.int64), indices.astype(np.int64),
          np.clip(uv, 0.0, 1.0).astype(np.float32))


def uv_to_pixel(uv: np.ndarray, size: int) -> np.ndarray:
  """uv (..., 2) -> (..., 2) float64 (column, row) in texels, texel centres at integers."""
  uv = np.asarray(uv, np.float64)
  return np.stack([uv[..., 0] * size - 0.5, (1.0 - uv[..., 1]) * size - 0.5], axis=-1)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """z of the cross product of 2-D vectors (..., 2): twice the signed area they span."""
  return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def texel_boxes(corners: np.ndarray, size: int) -> Tuple[np.ndarray, ...]:
  """The texel centres inside each triangle's bounding box, as (col0, row0, width, height).

  Args: corners (F, 3, 2) (column, row) pixel coordinates (uv_to_pixel).
  Returns: four (F,) int64; width and height are 0 where no centre is inside the box, and for
    triangles of no area in the atlas (marching cubes' slivers), which cover no texel.
  """
  lo = np.clip(np.ceil(corners.min(axis=1)), 0, size)
  hi = np.clip(np.floor(corners.max(axis=1)), -1, size - 1)
  extent = np.maximum(hi - lo + 1, 0).astype(np.int64)
  area = _cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
  extent[np.abs(area) < 1e-12] = 0
  lo = lo.astype(np.int64)
  return lo[:, 0], lo[:, 1], extent[:, 0], extent[:, 1]


def rasterize(uv: np.ndarray, faces: np.ndarray, size: int,
              candidates: int = CANDIDATES) -> Iterator[Tuple[np.ndarray, ...]]:
  """The texel centres inside each triangle in uv space, in batches of triangles.

  Every texel of a triangle's bounding box is a candidate; its barycentric coordinates say
  whether it is inside. The candidates of a batch are laid out flat (np.repeat of the boxes'
  sizes), about `candidates` at a time, so the work is vectorised over triangles and texels
  alike and memory stays bounded at any size.

  Args: uv (V', 2) OBJ convention; faces (F, 3) into uv.
  Yields: (texel (N,) flat index row * size + column, face (N,), barycentric (N, 3)) per batch.
  """
  corners = uv_to_pixel(uv[faces], size)  # (F, 3, 2)
  col0, row0, width, height = texel_boxes(corners, size)
  count = width * height
  ends = np.cumsum(count)
  start = 0
  while start < len(faces):
    # The triangles whose candidates fit the budget (at least one, whatever its size).
    begin = ends[start] - count[start]
    stop = max(int(np.searchsorted(ends, begin + candidates, side='right')), start + 1)
    n = count[start:stop]
    face = np.repeat(np.arange(start, stop), n)
    local = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    pixel = np.stack([col0[face] + local % width[face], row0[face] + local // width[face]], -1)
    a, b, c = (corners[face, k] for k in range(3))
    area = _cross(b - a, c - a)
    bary0 = _cross(c - b, pixel - b) / area
    bary1 = _cross(a - c, pixel - c) / area
    bary = np.stack([bary0, bary1, 1.0 - bary0 - bary1], axis=-1)
    inside = np.all(bary >= -EDGE_EPS, axis=-1)
    pixel, bary = pixel[inside], np.clip(bary[inside], 0.0, 1.0)
    yield (pixel[:, 1] * size + pixel[:, 0], face[inside],
           bary / bary.sum(axis=-1, keepdims=True))
    start = stop


def dilate(image: np.ndarray, covered: np.ndarray, rings: int = GUTTER_RINGS) -> np.ndarray:
  """Fills the texels no triangle covers: `rings` times, each uncovered texel next to covered
  ones (8-neighbours) takes their mean and counts as covered; what is left takes the mean of
  the texels covered at first.

  Without it, a bilinear lookup near a chart's edge (and every mipmap level) mixes in the
  background: chart seams show as dark lines on the object.
  Args: image (S, S, C) float; covered (S, S) bool. Returns (S, S, C) float32.
  """
  image = np.where(covered[..., None], image, 0.0).astype(np.float32)
  background = image[covered].mean(axis=0) if covered.any() else np.zeros(image.shape[-1])
  filled = covered.copy()
  s0, s1 = covered.shape
  for _ in range(rings):
    if filled.all():
      break
    weight = np.pad(filled.astype(np.float32), 1)
    values = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    total = sum(values[i:i + s0, j:j + s1] for i in range(3) for j in range(3))
    count = sum(weight[i:i + s0, j:j + s1] for i in range(3) for j in range(3))
    new = ~filled & (count > 0)
    image[new] = total[new] / count[new][:, None]
    filled |= new
  image[~filled] = background
  return image


def bake(mesh: mesh_lib.Mesh, point_fn: Callable, size: int = DEFAULT_SIZE,
         padding: int = PADDING, rings: int = GUTTER_RINGS,
         candidates: int = CANDIDATES) -> TexturedMesh:
  """The mesh unwrapped (unwrap) with the field's albedo baked into a size^2 texture.

  Args:
    mesh: mesh.extract's Mesh (world coordinates).
    point_fn: points (N, 3) -> (raw density (N,), albedo (N, 3)) numpy, e.g.
      views.make_point_fn(subject, chunk); called once per rasterize batch.
    size: texels per side (check_size); padding: texels between charts; rings: gutter rings
      (dilate); candidates: (triangle, texel) pairs per batch (rasterize).
  Raises SetupError for a bad size, EmptyFieldError for a mesh without faces.
  """
  check_size(size)
  if not len(mesh.faces):
    raise EmptyFieldError('the mesh has no faces; no texture baked')
  vmapping, faces, uv = unwrap(mesh.vertices, mesh.faces, size, padding)
  vertices = np.asarray(mesh.vertices, np.float32)[vmapping]
  albedo = np.zeros((size * size, 3), np.float32)
  covered = np.zeros(size * size, bool)
  for texel, face, bary in rasterize(uv, faces, size, candidates):
    if not len(texel):
      continue
    points = np.einsum('nk,nkd->nd', bary, vertices[faces[face]]).astype(np.float32)
    albedo[texel] = np.asarray(point_fn(points)[1])
    covered[texel] = True
  image = dilate(albedo.reshape(size, size, 3), covered.reshape(size, size), rings)
  texture = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
  return TexturedMesh(vertices, faces, uv, texture)


def to_trimesh(textured: TexturedMesh, name: str = 'mesh_textured', obj: bool = False):
  """A trimesh.Trimesh in the files' +Y-up frame (mesh.Y_UP) with the texture as its material.

  The albedo is all the field knows, so neither material adds a highlight of its own: glTF's
  (obj False) is the texture as base colour, not metallic, fully rough; the OBJ's (obj True) is
  the texture as map_Kd with a white Kd and a black Ks. `name` names the material, and so the
  OBJ's NAME.png and NAME.mtl.
  """
  import trimesh
  from PIL import Image
  image, white = Image.fromarray(textured.texture), [255, 255, 255, 255]
  if obj:
    material = trimesh.visual.material.SimpleMaterial(
        name=name, image=image, diffuse=white, specular=[0, 0, 0, 255])
  else:
    material = trimesh.visual.material.PBRMaterial(
        name=name, baseColorTexture=image, baseColorFactor=white, metallicFactor=0.0,
        roughnessFactor=1.0)
  visual = trimesh.visual.TextureVisuals(uv=textured.uv, material=material)
  return trimesh.Trimesh(vertices=textured.vertices @ mesh_lib.Y_UP.T, faces=textured.faces,
                         visual=visual, process=False)


def _write_atomic(path: str, data: bytes) -> None:
  """Writes path through a hidden temporary beside it, so a reader never sees half a file."""
  directory, base = os.path.split(path)
  tmp = os.path.join(directory, f'.{base}.tmp')
  with open(tmp, 'wb') as f:
    f.write(data)
  os.replace(tmp, path)


def write(textured: TexturedMesh, out_dir: str, name: str = 'mesh_textured') -> Dict[str, str]:
  """Writes out_dir/NAME.glb (texture embedded) and NAME.obj, NAME.mtl, NAME.png, each atomically.

  The .obj's `mtllib NAME.mtl` and the .mtl's `map_Kd NAME.png` name the files beside it; the
  .obj is written after them, so a reader that sees it finds both.
  Returns {'textured_glb', 'textured_obj', 'textured_mtl', 'textured_png': path}.
  """
  import trimesh
  # trimesh names the image after the material (NAME.png) and the library after mtl_name.
  text, side_files = trimesh.exchange.obj.export_obj(
      to_trimesh(textured, name, obj=True), include_normals=False, include_color=False,
      include_texture=True, return_texture=True, mtl_name=f'{name}.mtl')
  expected = {f'{name}.mtl', f'{name}.png'}
  if set(side_files) != expected:  # A trimesh that names them otherwise breaks the references.
    raise RuntimeError(f'trimesh wrote {sorted(side_files)} beside the OBJ, not {sorted(expected)}')
  paths = {}
  for ext in ('png', 'mtl'):
    paths[f'textured_{ext}'] = os.path.join(out_dir, f'{name}.{ext}')
    _write_atomic(paths[f'textured_{ext}'], side_files[f'{name}.{ext}'])
  paths['textured_obj'] = os.path.join(out_dir, f'{name}.obj')
  _write_atomic(paths['textured_obj'], text.encode('utf-8'))
  paths['textured_glb'] = os.path.join(out_dir, f'{name}.glb')
  glb = trimesh.exchange.gltf.export_glb(to_trimesh(textured, name))
  _write_atomic(paths['textured_glb'], glb)
  return paths

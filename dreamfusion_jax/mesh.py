"""A mesh people can open: marching cubes on a field's density grid, coloured by its albedo.

1. The iso-level comes from what the renders see (surface_level): a few views of the field, and
   the raw density at the expected termination point of every ray that is at least half opaque;
   the level is their median. A fixed density threshold (stable-dreamfusion exports at density
   10) gives an empty mesh or a block of fog as soon as a run's densities are scaled otherwise;
   this level is the density at the surface the videos show, whatever the scale. For a sharp
   field it is the surface itself (0.004 inside the zero set of scenes.scene_field's default,
   where the renders see it); for a soft one it lies between where head-on rays stop and the
   silhouette (tests/test_mesh.py).
2. The raw density (log density) is sampled on a resolution^3 grid spanning the bounding sphere,
   in chunks (memory bounded at any resolution); outside the sphere, where the renderer never
   looks, it is OUTSIDE_RAW, so the surface closes at the sphere.
3. Marching cubes (scikit-image) at that level; vertex colours are the albedo at the vertices.
4. Files (write): .glb (glTF binary) and .obj with vertex colours, written with trimesh. glTF is
   +Y up with the front facing +Z, so files hold (y, z, x) of the world's (x, y, z) (+z up, +x
   front): Blender's glTF and OBJ importers (defaults) then show the object upright, its front
   toward Blender's front view. texture.py bakes the same surface's albedo into a texture.
An empty field raises EmptyFieldError before anything is written.
"""
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tqdm

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import pictures
from dreamfusion_jax.errors import EmptyFieldError

# Raw density outside the bounding sphere: exp(-100) = 0, far below any level a render can see.
OUTSIDE_RAW = -100.0
# A ray counts as hitting the surface when its opacity is at least this (the median termination).
OPAQUE = 0.5
# The views the level is measured from: eight around at 30 degrees, one from above and one from
# below; at LEVEL_RESOLUTION^2 that is 40,960 rays, enough for a stable median.
LEVEL_VIEWS = tuple((30.0, az) for az in range(0, 360, 45)) + ((90.0, 0.0), (-90.0, 0.0))
LEVEL_RESOLUTION = 64
# Grid points per compiled call, per ray of the render chunk: a ray evaluates the field and its
# gradient at num_samples + num_importance (48-96) points, a grid point once without a gradient,
# so a call of 16 points per ray needs no more memory than a render call.
POINTS_PER_RAY = 16
# World (x, y, z), +z up and +x front, to glTF's +Y up and +Z front: file = world @ Y_UP.T.
Y_UP = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


class Mesh(NamedTuple):
  vertices: np.ndarray  # (V, 3) float32, world coordinates.
  faces: np.ndarray  # (F, 3) int64 vertex indices, counter-clockwise seen from outside.
  colors: np.ndarray  # (V, 3) uint8 albedo at the vertices.
  level: float  # The iso-level on the raw density (log density).


def level_cameras(distance: float, focal_mult: float) -> List[camera_lib.Camera]:
  """The LEVEL_VIEWS cameras, looking at the origin from `distance`."""
  return [camera_lib.camera_from_angles(el, az, distance, focal_mult) for el, az in LEVEL_VIEWS]


def surface_level(render_view, point_fn, cameras: Sequence[camera_lib.Camera],
                  resolution: int = LEVEL_RESOLUTION) -> float:
  """The median raw density at the expected termination points of the opaque rays (acc >= 0.5).

  Args: render_view, point_fn: pictures.make_camera_fn and pictures.make_point_fn of the subject.
  Raises EmptyFieldError when no ray of any camera is that opaque.
  """
  points, max_acc = [], 0.0
  for cam in tqdm.tqdm(cameras, desc='mesh level', unit='view', dynamic_ncols=True):
    out = render_view(cam, resolution, pictures.headlight(cam))
    origins, directions = (np.asarray(a) for a in camera_lib.generate_rays(cam, resolution,
                                                                            resolution))
    hit = out['acc'] >= OPAQUE
    points.append(origins[hit] + directions[hit] * out['depth'][hit][:, None])
    max_acc = max(max_acc, float(out['acc'].max()))
  points = np.concatenate(points)
  if not len(points):
    raise EmptyFieldError(
        f'the field is empty: no pixel of {len(cameras)} views around the object is opaque '
        f'(the largest opacity is {max_acc:.3f}, a surface needs {OPAQUE}); no mesh written. '
        'Check the checkpoint (its previews/) or train longer.')
  raw, _ = point_fn(points)
  return float(np.median(raw))


def grid_axis(resolution: int, radius: float) -> np.ndarray:
  """(resolution,) sample coordinates along each axis, from -radius to radius."""
  return np.linspace(-radius, radius, resolution, dtype=np.float32)


def density_grid(point_fn, resolution: int, radius: float, chunk: int) -> np.ndarray:
  """Raw density on the grid_axis^3 grid, indexed [x, y, z]; OUTSIDE_RAW outside the sphere.

  Args: point_fn: pictures.make_point_fn of the field; chunk: grid points made at a time.
  Returns: (resolution,) * 3 float32.
  """
  axis = grid_axis(resolution, radius)
  n = resolution ** 3
  grid = np.empty(n, np.float32)
  for start in tqdm.trange(0, n, chunk, desc='mesh grid', unit='chunk', dynamic_ncols=True):
    i, j, k = np.unravel_index(np.arange(start, min(start + chunk, n)), (resolution,) * 3)
    points = np.stack([axis[i], axis[j], axis[k]], axis=-1)
    raw, _ = point_fn(points)
    inside = np.sum(points ** 2, axis=-1) < radius ** 2
    grid[start:start + len(points)] = np.where(inside, raw, OUTSIDE_RAW)
  return grid.reshape((resolution,) * 3)


def marching_cubes(grid: np.ndarray, level: float, radius: float) -> Tuple[np.ndarray, np.ndarray]:
  """The level set {raw = level} of a density_grid as (vertices (V, 3) world, faces (F, 3)),
  faces counter-clockwise seen from the low-density side (outward normals).

  Raises EmptyFieldError when the grid never exceeds the level (a surface finer than the grid).
  """
  from skimage import measure
  if not np.max(grid) > level:
    raise EmptyFieldError(
        f'the field is empty at this grid size: no grid point reaches the surface level '
        f'{level:.3g} (the largest raw density is {np.max(grid):.3g}); no mesh written. '
        'Raise the mesh resolution.')
  spacing = 2.0 * radius / (grid.shape[0] - 1)
  # 'ascent': the object (raw > level) is on the high side; faces then wind outward.
  vertices, faces, _, _ = measure.marching_cubes(grid, level=level, spacing=(spacing,) * 3,
                                                 gradient_direction='ascent')
  return (vertices - radius).astype(np.float32), faces.astype(np.int64)


def albedo_colors(point_fn, vertices: np.ndarray) -> np.ndarray:
  """The field's albedo (point_fn: pictures.make_point_fn) at the vertices (V, 3), uint8 (V, 3)."""
  _, albedo = point_fn(vertices)
  return np.round(np.clip(albedo, 0.0, 1.0) * 255).astype(np.uint8)


def extract(subject: pictures.Subject, resolution: int, chunk: int, level: Optional[float] = None,
            distance: float = 1.3, focal_mult: float = 1.0, render_view=None,
            point_fn=None) -> Mesh:
  """The field's surface as a coloured Mesh (module docstring).

  Args:
    subject: the field (pictures.model_subject or pictures.field_subject).
    resolution: grid points per axis across the bounding sphere's diameter.
    chunk: rays per compiled call (POINTS_PER_RAY times as many grid points).
    level: the raw-density iso-level; None measures it from renders (surface_level) taken from
      `distance` with focal length focal_mult * width.
    render_view: pictures.make_camera_fn(subject, chunk) if the caller has one compiled already.
    point_fn: pictures.make_point_fn(subject, POINTS_PER_RAY * chunk), likewise (texture.bake
      queries the same function for the albedo).

  Raises EmptyFieldError for a field without a surface.
  """
  points = POINTS_PER_RAY * chunk
  point_fn = point_fn or pictures.make_point_fn(subject, points)
  if level is None:
    render_view = render_view or pictures.make_camera_fn(subject, chunk)
    level = surface_level(render_view, point_fn, level_cameras(distance, focal_mult))
  grid = density_grid(point_fn, resolution, subject.settings.radius, points)
  vertices, faces = marching_cubes(grid, level, subject.settings.radius)
  if not len(faces):
    raise EmptyFieldError(f'marching cubes found no surface at level {level:.3g}; no mesh written')
  return Mesh(vertices, faces, albedo_colors(point_fn, vertices), float(level))


def to_trimesh(mesh: Mesh):
  """A trimesh.Trimesh of the mesh in the files' +Y-up frame (Y_UP), vertex colours attached."""
  import trimesh
  colors = np.concatenate([mesh.colors, np.full((len(mesh.colors), 1), 255, np.uint8)], axis=1)
  return trimesh.Trimesh(vertices=mesh.vertices @ Y_UP.T, faces=mesh.faces,
                         vertex_colors=colors, process=False)


def write(mesh: Mesh, out_dir: str, name: str = 'mesh') -> Dict[str, str]:
  """Writes out_dir/<name>.glb and .obj (each atomically: a reader never sees half a file).

  Returns {'glb': path, 'obj': path}. Raises EmptyFieldError for a mesh without faces.
  """
  if not len(mesh.faces):
    raise EmptyFieldError('the mesh has no faces; no mesh written')
  tm = to_trimesh(mesh)
  paths = {}
  for ext in ('glb', 'obj'):
    path = os.path.join(out_dir, f'{name}.{ext}')
    tmp = os.path.join(out_dir, f'.{name}.tmp.{ext}')
    tm.export(tmp, file_type=ext)
    os.replace(tmp, path)
    paths[ext] = path
  return paths

"""Turntable videos, a contact sheet and a mesh of a trained run: python run_render.py --workdir=DIR

  python run_render.py --workdir=runs/toy                       # CPU defaults: 128^2, 60 frames
  python run_render.py --workdir=runs/toy --light=world:1,0,0   # relit from the front (+x)
  python run_render.py --workdir=runs/burger --resolution=512 --frames=120 \
      --mesh_resolution=256                                     # the paper's size, on a GPU

Loads DIR/config.json and the latest checkpoint in DIR/checkpoints and writes DIR/render/:
{shaded,albedo,textureless,normals,depth}.mp4 (30 fps), contact_sheet.png (8 azimuths x the five
kinds), mesh.glb and mesh.obj (vertex colours from the albedo), mesh_textured.{glb,obj,mtl,png}
(the same mesh UV-unwrapped, its albedo baked into a texture), index.html (the report: open it
by double-click; training curves as curves_*.png beside it) and summary.json. They are written
into a temporary directory and moved into DIR/render whole, so an interrupted render leaves no
file and any earlier render as it was.

Exit codes: 0 done; 2 a bad flag or workdir (one line naming it and what it allows); 130
interrupted (Ctrl-C).
"""

from absl import app
from absl import flags
from absl import logging

from dreamfusion_jax import export
from dreamfusion_jax.errors import fail

_D = export.Options()
_WORKDIR = flags.DEFINE_string('workdir', None, 'A run_train.py output directory.')
_RESOLUTION = flags.DEFINE_integer('resolution', _D.resolution,
                                   'Video frame and contact-sheet tile size (square, even).')
_FRAMES = flags.DEFINE_integer('frames', _D.frames, 'Turntable frames (one full turn).')
_FPS = flags.DEFINE_integer('fps', _D.fps, 'Video frame rate.')
_ELEVATION = flags.DEFINE_float('elevation', _D.elevation_deg, 'Camera elevation, degrees.')
_DISTANCE = flags.DEFINE_float('distance', _D.distance, 'Camera distance from the origin.')
_FOCAL = flags.DEFINE_float('focal_mult', _D.focal_mult, 'Focal length / image width.')
_LIGHT = flags.DEFINE_string(
    'light', _D.light, "Light of the shaded and textureless kinds: 'camera' (a headlight that "
    "turns with the camera), 'camera:X,Y,Z' (a distant light in the camera's frame: X right, "
    "Y up, Z toward the viewer) or 'world:X,Y,Z' (a distant light fixed in the world, +z up, "
    '+x the front).')
_SHEET_VIEWS = flags.DEFINE_integer('sheet_views', _D.sheet_views, 'Contact-sheet azimuths.')
_MESH = flags.DEFINE_bool('mesh', _D.mesh, 'Extract and write the mesh.')
_MESH_RESOLUTION = flags.DEFINE_integer('mesh_resolution', _D.mesh_resolution,
                                        'Marching-cubes grid points per axis.')
_MESH_LEVEL = flags.DEFINE_float('mesh_level', _D.mesh_level,
                                 'Raw-density (log density) iso-level of the mesh; unset: the '
                                 'density at the surface the renders see.')
_TEXTURE_SIZE = flags.DEFINE_integer(
    'texture_size', _D.texture_size, 'Texture size of the textured mesh (mesh_textured.*), a '
    'power of two; 0 writes none.')
_CHUNK = flags.DEFINE_integer('chunk', _D.chunk, 'Rays per compiled call (bounds memory).')
flags.mark_flags_as_required(['workdir'])


def parse_flags(argv):
  """absl's flag parsing, with its errors as one line and exit code 2 (absl's own exits 1)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(str(e).splitlines()[0], 2)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs its restore at INFO.
  from dreamfusion_jax.errors import SetupError
  options = export.Options(
      resolution=_RESOLUTION.value, frames=_FRAMES.value, fps=_FPS.value,
      elevation_deg=_ELEVATION.value, distance=_DISTANCE.value, focal_mult=_FOCAL.value,
      light=_LIGHT.value, sheet_views=_SHEET_VIEWS.value, mesh=_MESH.value,
      mesh_resolution=_MESH_RESOLUTION.value, mesh_level=_MESH_LEVEL.value,
      texture_size=_TEXTURE_SIZE.value, chunk=_CHUNK.value)
  try:
    summary = export.run(_WORKDIR.value, options)
  except SetupError as e:
    fail(str(e), 2)
  except KeyboardInterrupt:
    fail(f'interrupted: nothing written ({_WORKDIR.value}/render, if any, is as it was)', 130)
  print(f"done: step {summary['step']}; wrote {', '.join(sorted(summary['files'].values()))} "
        f'in {_WORKDIR.value}/render; open {_WORKDIR.value}/render/index.html')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)

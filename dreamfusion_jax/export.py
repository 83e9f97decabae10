"""What run_render.py does: a trained run's checkpoint -> WORKDIR/render/ (videos, sheet, mesh,
index.html: report.py).

  load(workdir)                 the latest checkpoint as a pictures.Subject, its step and config
  render_subject(subject, ...)  turntable videos, the contact sheet and the mesh of any Subject
                                (a checkpoint's NeRF or an analytic field: tests use the latter)
"""
import json
import math
import os
import shutil
import tempfile
import time
from typing import Dict, NamedTuple, Optional, Tuple

import imageio.v3 as iio
import jax
import ml_collections

from dreamfusion_jax import checkpoints
from dreamfusion_jax import mesh as mesh_lib
from dreamfusion_jax import report
from dreamfusion_jax import texture
from dreamfusion_jax import train
from dreamfusion_jax import turntable
from dreamfusion_jax import pictures
from dreamfusion_jax import workdir as workdir_lib
from dreamfusion_jax.errors import SetupError


class Options(NamedTuple):
  """run_render.py's flags (FLAGS: each one's name and help). The defaults finish a toy
  checkpoint in minutes on a CPU."""
  resolution: int = 128
  frames: int = 60
  fps: int = 30
  elevation_deg: float = 30.0  # The paper evaluates at 30 [P A.3].
  distance: float = 1.3  # The middle of the training range.
  focal_mult: float = 1.0  # A 53 degree field of view.
  light: str = 'camera'
  sheet_views: int = 8
  mesh: bool = True
  mesh_resolution: int = 128
  mesh_level: Optional[float] = None
  texture_size: int = texture.DEFAULT_SIZE
  chunk: int = 1024


# {option: (its run_render.py flag, the flag's help)}: run_render.py defines its flags from this
# and Options' defaults and types, so each option is declared here alone.
FLAGS = {
    'resolution': ('resolution', 'Video frame and contact-sheet tile size (square, even).'),
    'frames': ('frames', 'Turntable frames (one full turn).'),
    'fps': ('fps', 'Video frame rate.'),
    'elevation_deg': ('elevation', 'Camera elevation, degrees.'),
    'distance': ('distance', 'Camera distance from the origin.'),
    'focal_mult': ('focal_mult', 'Focal length / image width.'),
    'light': ('light', "Light of the shaded and textureless kinds: 'camera' (a headlight that "
              "turns with the camera), 'camera:X,Y,Z' (a distant light in the camera's frame: X "
              "right, Y up, Z toward the viewer) or 'world:X,Y,Z' (a distant light fixed in the "
              'world, +z up, +x the front).'),
    'sheet_views': ('sheet_views', 'Contact-sheet azimuths: 360 i / sheet_views.'),
    'mesh': ('mesh', 'Extract and write the mesh.'),
    'mesh_resolution': ('mesh_resolution', 'Marching-cubes grid points per axis across the '
                        'bounding sphere.'),
    'mesh_level': ('mesh_level', 'Raw-density (log density) iso-level of the mesh; unset: the '
                   'density at the surface the renders see.'),
    'texture_size': ('texture_size', 'Texture size of the textured mesh (mesh_textured.*), a '
                     'power of two; 0 writes none.'),
    'chunk': ('chunk', 'Rays per compiled call (and mesh.POINTS_PER_RAY times as many grid '
              'points): bounds memory.'),
}


def check(options: Options, max_log_density: float = math.inf) -> None:
  """SetupError naming the flag and its allowed range for a bad option.

  max_log_density: the run's field.max_log_density, the largest raw density the field can have
  (a mesh level above it would cut nothing).
  """
  finite, level = math.isfinite, options.mesh_level
  rules = [('resolution', options.resolution >= 16 and options.resolution % 2 == 0,
            'an even number >= 16 (H.264 needs even sizes)'),
           ('frames', options.frames >= 1, '>= 1'), ('fps', options.fps >= 1, '>= 1'),
           ('elevation_deg', finite(options.elevation_deg) and abs(options.elevation_deg) <= 90,
            'a number of degrees in [-90, 90]'),
           ('distance', finite(options.distance) and options.distance > 0, 'a finite number > 0'),
           ('focal_mult', finite(options.focal_mult) and options.focal_mult > 0,
            'a finite number > 0'),
           ('sheet_views', options.sheet_views >= 1, '>= 1'),
           ('mesh_resolution', options.mesh_resolution >= 8, '>= 8'),
           ('mesh_level', level is None or finite(level) and level < max_log_density,
            'a finite log density below the field\'s largest, field.max_log_density='
            f'{max_log_density:g} (unset: measured from the renders)'),
           ('texture_size', options.texture_size == 0 or texture.valid_size(options.texture_size),
            f'{texture.SIZES}, or 0 for no textured mesh'),
           ('chunk', options.chunk >= 1, '>= 1')]
  for name, ok, allowed in rules:
    if not ok:
      value = getattr(options, name)
      raise SetupError(f'--{FLAGS[name][0]}={value!r} must be {allowed}')
  turntable.parse_light(options.light)


def load(workdir: str) -> Tuple[pictures.Subject, int, ml_collections.ConfigDict]:
  """The latest checkpoint of a run_train.py workdir with its resolved config.json.

  Returns (subject, step, config). Raises SetupError when the workdir, its config or a
  checkpoint is missing or unreadable.
  """
  config_path = os.path.join(workdir, 'config.json')
  checkpoint_dir = os.path.join(workdir, 'checkpoints')
  train_hint = f'train first: python run_train.py --config=configs/toy.py --workdir={workdir}'
  if not os.path.isfile(config_path):
    raise SetupError(f'{config_path} not found: --workdir must be a run_train.py output '
                     f'directory ({train_hint})')
  try:
    with open(config_path) as f:
      config = ml_collections.ConfigDict(json.load(f))
  except (OSError, ValueError) as e:
    raise SetupError(f'{config_path} cannot be read ({e}): it is not a run_train.py config '
                     f'(rerun run_train.py with --overwrite to write it again)') from e
  manager = checkpoints.manager(workdir, config) if os.path.isdir(checkpoint_dir) else None
  if manager is None or manager.latest_step() is None:
    raise SetupError(f'no checkpoint in {checkpoint_dir} ({train_hint})')
  model = train.build_model(config, guidance=None)  # Rendering needs no prior.
  state = checkpoints.restore_or_init(manager, model, jax.random.PRNGKey(0))
  step = int(state.step)
  if step == 0:  # restore_or_init's fresh state: no checkpoint read back.
    raise SetupError(f'no checkpoint in {checkpoint_dir} could be read back ({train_hint})')
  return pictures.model_subject(model, state.params, step), step, config


def render_subject(subject: pictures.Subject, out_dir: str, options: Options) -> Dict:
  """Writes out_dir/{KIND}.mp4, contact_sheet.png, mesh.glb and mesh.obj (vertex colours) and
  mesh_textured.{glb,obj,mtl,png} (texture.bake); returns a summary.

  The mesh is extracted first, so an empty field raises EmptyFieldError before any file exists.
  """
  check(options)
  summary, files = dict(options=options._asdict()), {}
  render_view = pictures.make_camera_fn(subject, options.chunk)  # Compiled once, used throughout.
  start = time.time()
  mesh = None
  if options.mesh:
    # One compiled field query for the mesh's level, grid and colours and the texture's bake.
    point_fn = pictures.make_point_fn(subject, mesh_lib.POINTS_PER_RAY * options.chunk)
    mesh = mesh_lib.extract(subject, options.mesh_resolution, options.chunk,
                            options.mesh_level, options.distance, options.focal_mult, render_view,
                            point_fn=point_fn)
    summary['mesh'] = dict(level=mesh.level, vertices=len(mesh.vertices), faces=len(mesh.faces),
                           seconds=time.time() - start,
                           file_axes='glTF: +Y up, front +Z; file (x, y, z) = world (y, z, x)')
  os.makedirs(out_dir, exist_ok=True)
  if mesh is not None:
    files.update(mesh_lib.write(mesh, out_dir))
    if options.texture_size:
      start = time.time()
      textured = texture.bake(mesh, point_fn, options.texture_size)
      files.update(texture.write(textured, out_dir))
      summary['texture'] = dict(size=options.texture_size, vertices=len(textured.vertices),
                                seconds=time.time() - start)
  start = time.time()
  sheet = write_turntable(render_view, subject, out_dir, options, files)
  summary['turntable_seconds'] = time.time() - start
  start = time.time()
  write_contact_sheet(render_view, subject, out_dir, options, sheet, files)
  summary['contact_sheet_seconds'] = time.time() - start
  summary['files'] = {k: os.path.basename(v) for k, v in files.items()}
  return summary


def _depth_range(subject: pictures.Subject, options: Options) -> Tuple[float, float]:
  return turntable.depth_range(options.distance, subject.settings.radius, subject.settings.near)


def write_turntable(render_view, subject: pictures.Subject, out_dir: str, options: Options,
                    files: Dict[str, str]) -> Dict[int, Dict]:
  """The five videos (paths added to `files`). Returns the contact-sheet columns they contain.

  Contact-sheet column c (azimuth 360 c / S) is turntable frame c F / S when that is a whole
  number; those columns' kind images are returned as {c: images}, so they are not rendered twice.
  """
  frames, columns = options.frames, options.sheet_views
  shared = {c * frames // columns: c for c in range(columns) if c * frames % columns == 0}
  near, far = _depth_range(subject, options)
  light = turntable.parse_light(options.light)
  cameras = turntable.orbit(frames, options.elevation_deg, options.distance, options.focal_mult)
  sheet = {}

  def kind_frames():
    rendered = turntable.render_frames(render_view, cameras, options.resolution, light,
                                       desc='turntable')
    for i, frame in enumerate(rendered):
      images = turntable.kind_images(frame, near, far)
      if i in shared:
        sheet[shared[i]] = images
      yield images

  files.update(turntable.write_videos(kind_frames(), out_dir, options.fps))
  return sheet


def write_contact_sheet(render_view, subject: pictures.Subject, out_dir: str, options: Options,
                        sheet: Dict[int, Dict], files: Dict[str, str]) -> None:
  """out_dir/contact_sheet.png: the columns not in `sheet` are rendered, then all are drawn."""
  near, far = _depth_range(subject, options)
  rest = [c for c in range(options.sheet_views) if c not in sheet]
  cameras = turntable.orbit(options.sheet_views, options.elevation_deg, options.distance,
                            options.focal_mult)
  renders = turntable.render_frames(render_view, [cameras[c] for c in rest], options.resolution,
                                    turntable.parse_light(options.light), desc='contact sheet')
  for c, frame in zip(rest, renders):
    sheet[c] = turntable.kind_images(frame, near, far)
  columns = range(options.sheet_views)
  labels = [f'{360.0 * c / options.sheet_views:g}°' for c in columns]
  files['contact_sheet'] = os.path.join(out_dir, 'contact_sheet.png')
  iio.imwrite(files['contact_sheet'], turntable.contact_sheet([sheet[c] for c in columns], labels))


def run(workdir: str, options: Options) -> Dict:
  """Renders the latest checkpoint of `workdir` into workdir/render/ with its report page
  (index.html: report.write) and summary.json.

  Everything is written into a temporary directory beside it and moved into place whole once
  done: an interrupted or failed render leaves no file, and any earlier render/ as it was.
  """
  check(options)
  subject, step, config = load(workdir)
  check(options, config.field.max_log_density)
  out_dir = os.path.join(workdir, 'render')
  tmp = tempfile.mkdtemp(prefix='.render-', dir=workdir)
  os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would make render/ private.
  try:
    summary = dict(step=step, **render_subject(subject, tmp, options))
    rendered = {k: os.path.join(tmp, v) for k, v in summary['files'].items()}
    written = report.write(tmp, workdir, summary, rendered)
    summary['files'].update({k: os.path.basename(v) for k, v in written.items()})
    workdir_lib.write_json(os.path.join(tmp, 'summary.json'), summary)
    replace_directory(tmp, out_dir)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return summary


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def replace_directory(new: str, path: str) -> None:
  """Moves directory `new` to `path`, replacing what is there; the old one is gone only once the
  new one is in place."""
  old = None
  if os.path.exists(path):
    old = tempfile.mkdtemp(prefix='.render-old-', dir=os.path.dirname(path))
    os.replace(path, os.path.join(old, 'render'))
  os.replace(new, path)
  if old:
    shutil.rmtree(old, ignore_errors=True)

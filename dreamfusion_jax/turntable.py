"""Turntables for people to look at: the five kinds the paper's figures compare, as videos and a
labelled contact sheet (paper Fig. 1, 3, 5: shaded, albedo, textureless, normals, depth).

The camera orbits the object at a fixed elevation, starting at the front (azimuth 0, +x) and
turning counter-clockwise seen from above (camera.py's conventions). The light of the shaded and
textureless kinds is one of (parse_light):
  camera          the previews' headlight (pictures.headlight): above and behind the camera, so it
                  turns with it and the visible side stays lit (the default);
  camera:X,Y,Z    a distant light from direction (X, Y, Z) in the camera's frame (X right, Y up,
                  Z toward the viewer), turning with the camera;
  world:X,Y,Z     a distant light from world direction (X, Y, Z) (+z up, +x the front): the
                  object turns under a fixed light (relighting, one of the paper's claims [P §4]).
A "distant" light is the renderer's point light placed LIGHT_DISTANCE away, so its direction is
the same at every point of the object to 1.4e-4 rad.
"""
import os
import warnings
from typing import Dict, Iterable, Iterator, List, NamedTuple, Sequence, Tuple

import imageio.v2 as imageio
import jax.numpy as jnp
import numpy as np
import tqdm
from PIL import Image, ImageDraw, ImageFont

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import pictures
from dreamfusion_jax.errors import SetupError

VIDEOS = ('shaded', 'albedo', 'textureless', 'normals', 'depth')
LIGHT_FRAMES = ('camera', 'world')
# Distance of a distant light: over the 1.4 bounding sphere its direction varies by < 1.4e-4 rad.
LIGHT_DISTANCE = 1e4


class Light(NamedTuple):
  """A parsed --light: the headlight (direction None) or a distant light in a frame."""
  frame: str  # 'camera' or 'world'
  direction: Tuple[float, float, float] | None  # None: the headlight (frame 'camera').


def parse_light(spec: str) -> Light:
  """'camera' | 'camera:X,Y,Z' | 'world:X,Y,Z' (module docstring) -> Light; SetupError otherwise."""
  frame, _, vector = spec.strip().partition(':')
  usage = (f"--light={spec!r}: expected 'camera', 'camera:X,Y,Z' or 'world:X,Y,Z' "
           "(e.g. world:1,0,0 lights the front from +x)")
  if frame not in LIGHT_FRAMES or (frame == 'world' and not vector):
    raise SetupError(usage)
  if not vector:
    return Light('camera', None)
  try:
    direction = tuple(float(v) for v in vector.split(','))
  except ValueError:
    raise SetupError(usage) from None
  if len(direction) != 3 or not np.all(np.isfinite(direction)) or not np.any(direction):
    raise SetupError(usage + '; the direction must be 3 finite numbers, not all zero')
  return Light(frame, direction)


def light_position(light: Light, camera: camera_lib.Camera) -> jnp.ndarray:
  """The renderer's point-light position (3,) for one camera."""
  if light.direction is None:
    return pictures.headlight(camera)
  d = camera_lib.safe_normalize(jnp.asarray(light.direction, jnp.float32))
  if light.frame == 'camera':
    d = camera.rotation @ d  # Columns right, up, back: camera frame -> world.
  return LIGHT_DISTANCE * d


def orbit(num_frames: int, elevation_deg: float, distance: float,
          focal_mult: float) -> List[camera_lib.Camera]:
  """num_frames cameras at azimuths 360 i / num_frames, i = 0.. (0 = the front), looking at the
  origin from `elevation_deg` and `distance`, focal length focal_mult * width."""
  return [camera_lib.camera_from_angles(elevation_deg, 360.0 * i / num_frames, distance,
                                        focal_mult) for i in range(num_frames)]


def depth_range(distance: float, radius: float, near: float) -> Tuple[float, float]:
  """Distances along the ray at which a camera at `distance` can see the bounding sphere."""
  return max(distance - radius, near), distance + radius


def depth_image(depth, acc, near: float, far: float) -> np.ndarray:
  """Depth (H, W) along the ray shown as grey, near bright and far dark, composited by opacity
  acc (H, W) over black; the range is fixed so a turntable does not flicker. Returns (H, W, 3)."""
  value = np.clip((far - np.asarray(depth)) / (far - near), 0.0, 1.0) * np.asarray(acc)
  return np.repeat(value[..., None], 3, axis=-1)


def kind_images(frame: Dict[str, np.ndarray], near: float, far: float) -> Dict[str, np.ndarray]:
  """The five VIDEOS of one render (pictures.make_camera_fn's dict) as (H, W, 3) uint8 images."""
  images = dict(shaded=frame['shaded'], albedo=frame['albedo'], textureless=frame['textureless'],
                normals=np.asarray(pictures.normals_image(frame['normals'], frame['acc'])),
                depth=depth_image(frame['depth'], frame['acc'], near, far))
  return {k: np.round(np.clip(images[k], 0.0, 1.0) * 255).astype(np.uint8) for k in VIDEOS}


def render_frames(render_view, cameras: Sequence[camera_lib.Camera], resolution: int,
                  light: Light, desc: str = 'render') -> Iterator[Dict[str, np.ndarray]]:
  """Renders of each camera, one at a time, with a progress bar.

  Args: render_view: pictures.make_camera_fn(subject, chunk), compiled once for all calls.
  Yields: its dicts (shaded, albedo, textureless, normals, acc, depth), camera by camera.
  """
  for cam in tqdm.tqdm(cameras, desc=desc, unit='view', dynamic_ncols=True):
    yield render_view(cam, resolution, light_position(light, cam))


def write_videos(frames: Iterable[Dict[str, np.ndarray]], out_dir: str,
                 fps: int) -> Dict[str, str]:
  """Streams frames (kind_images dicts) into one H.264 MP4 per kind (out_dir/<kind>.mp4).

  Frames are encoded as they arrive, so memory does not grow with the frame count. Sizes must be
  even (H.264 in yuv420p, which every player reads). Returns {kind: path}.
  """
  paths = {k: os.path.join(out_dir, f'{k}.mp4') for k in VIDEOS}
  writers = {}
  with warnings.catch_warnings():
    # JAX warns when the process forks; ffmpeg's fork is followed by exec: no JAX runs there.
    warnings.filterwarnings('ignore', 'os.fork', RuntimeWarning)
    try:
      for images in frames:
        if not writers:
          h, w = images['shaded'].shape[:2]
          if h % 2 or w % 2:
            raise ValueError(f'video frames must have even sizes, got {h}x{w}')
          writers = {k: imageio.get_writer(paths[k], format='FFMPEG', mode='I', fps=fps,
                                           codec='libx264', pixelformat='yuv420p', quality=8,
                                           macro_block_size=1) for k in VIDEOS}
        for k in VIDEOS:
          writers[k].append_data(images[k])
    finally:
      for w in writers.values():
        w.close()
  return paths


def _font(size_px: int):
  """Pillow's built-in scalable font (Pillow >= 10.1), or its bitmap font without FreeType."""
  try:
    return ImageFont.load_default(size=size_px)
  except (TypeError, ImportError, OSError):
    return ImageFont.load_default()


def contact_sheet(images: Sequence[Dict[str, np.ndarray]], column_labels: Sequence[str],
                  row_labels: Sequence[str] = VIDEOS) -> np.ndarray:
  """A labelled grid: one column per view, one row per kind, on white.

  Args:
    images: per view, a dict of (H, W, 3) uint8 images with the keys row_labels.
    column_labels: one label per view (e.g. '45°'), drawn above its column.
    row_labels: the kinds, in row order, drawn left of their row.

  Returns: (top + rows H, left + columns W, 3) uint8.
  """
  h, w = images[0][row_labels[0]].shape[:2]
  font = _font(max(12, h // 10))
  measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))
  text_w = lambda s: measure.textbbox((0, 0), s, font=font)[2]
  text_h = max(measure.textbbox((0, 0), s, font=font)[3] for s in [*row_labels, *column_labels])
  pad = max(4, text_h // 2)
  left = max(text_w(s) for s in row_labels) + 2 * pad
  top = text_h + 2 * pad
  sheet = Image.new('RGB', (left + len(images) * w, top + len(row_labels) * h), 'white')
  draw = ImageDraw.Draw(sheet)
  for c, (view, label) in enumerate(zip(images, column_labels)):
    x = left + c * w
    draw.text((x + (w - text_w(label)) // 2, pad), label, fill='black', font=font)
    for r, kind in enumerate(row_labels):
      sheet.paste(Image.fromarray(view[kind]), (x, top + r * h))
  for r, kind in enumerate(row_labels):
    draw.text((pad, top + r * h + (h - text_h) // 2), kind, fill='black', font=font)
  return np.asarray(sheet)

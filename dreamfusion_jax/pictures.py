"""Deterministic renders of a trained field for people to look at: previews and evaluation views,
and the chunked renders of the export tools (turntable.py, mesh.py) of a Subject: a checkpoint's
NeRF or an analytic field, through the same functions.

Every kind the paper shows (Fig. 1, 3): shaded, albedo, textureless, normals; plus depth and
opacity. Renders are deterministic (randomized=False: sample midpoints).

Names: a picture is a render for people (this module); a view is a training camera draw and its
render (train.ViewDraw, train.render_views); view words are the prompts' (prompts.view_words); a
turntable's renders are frames (turntable.render_frames) of its VIDEOS.
"""
from typing import Any, Callable, Dict, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import field as field_lib
from dreamfusion_jax import render
from dreamfusion_jax import schedules

PREVIEW_STRIP = ('shaded', 'albedo', 'textureless', 'normals')
_MODES = {'shaded': render.LAMBERTIAN, 'albedo': render.ALBEDO,
          'textureless': render.TEXTURELESS}


class Subject(NamedTuple):
  """What the export tools (turntable.py, mesh.py) render: a checkpoint's NeRF or an analytic field.

  `bind(params)` is called inside the compiled functions, so a NeRF's weights are arguments of the
  compiled code rather than constants folded into it; an analytic field ignores `params`.
  """
  bind: Callable[[Any], Tuple[field_lib.FieldFn, Callable]]  # params -> (field_fn, background_fn)
  params: Any  # The NeRF's {'nerf': ..., 'background': ...}, or None.
  variance: jnp.ndarray  # () IPE variance the field is queried with.
  settings: render.RenderSettings  # Bounding sphere, samples, shading constants.


def model_subject(model, params, step) -> Subject:
  """A trained NeRF at `step` (its IPE variance), rendered deterministically."""
  config = model.config
  variance = field_lib.ipe_variance(schedules.lambda_sigma(step, config),
                                    config.field.ipe_covariance)
  return Subject(bind=lambda p: field_lib.bind(model.nerf, model.background, p), params=params,
                 variance=jnp.float32(variance),
                 settings=render.RenderSettings.from_config(config, randomized=False))


def field_subject(field_fn: field_lib.FieldFn, background_fn: Callable,
                  settings: render.RenderSettings) -> Subject:
  """A field without weights (scenes.scene_field, a test field); settings made deterministic."""
  return Subject(bind=lambda _: (field_fn, background_fn), params=None,
                 variance=jnp.float32(0.0), settings=settings._replace(randomized=False))


def normals_image(normals: jnp.ndarray, acc: jnp.ndarray) -> jnp.ndarray:
  """Unit normals (..., 3) shown as 0.5 + 0.5 n, composited by opacity acc (...) over white."""
  acc = acc[..., None]
  return (0.5 + 0.5 * normals) * acc + (1.0 - acc)


def headlight(camera: camera_lib.Camera) -> jnp.ndarray:
  """A light above and behind the camera, so the visible side is lit. Returns (3,)."""
  return camera.origin * 1.5 + jnp.array([0.0, 0.0, 1.0])


def render_kinds(field_fn, background_fn, camera, resolution: int, variance, light_position,
                 settings: render.RenderSettings) -> Dict[str, jnp.ndarray]:
  """Every kind of one camera.

  Returns: dict of (H, W, 3) images in [0, 1] (PREVIEW_STRIP), normal_vectors (H, W, 3) unit world
  normals of the opacity-weighted sum, acc and depth (H, W).
  """
  key = jax.random.PRNGKey(0)  # unused when settings.randomized is False
  out = {}
  for kind, mode in _MODES.items():
    r = render.render_camera(field_fn, background_fn, camera, resolution, resolution, key,
                             variance=variance, light_position=light_position,
                             shading_mode=jnp.int32(mode), settings=settings)
    out[kind] = jnp.clip(r['rgb'], 0.0, 1.0)
  normals = camera_lib.safe_normalize(r['normals'])
  out['normals'] = normals_image(normals, r['acc'])
  out['normal_vectors'], out['acc'], out['depth'] = normals, r['acc'], r['depth']
  return out


def make_preview_fn(model, resolution: int):
  """Jitted (params, step) -> (H, 4 H, 3) uint8 strip: shaded | albedo | textureless | normals,
  from elevation 30, azimuth 45 (front and side in view), with a headlight."""
  config = model.config
  settings = render.RenderSettings.from_config(config, randomized=False)
  cam = camera_lib.camera_from_angles(30.0, 45.0, 1.3, 1.0)

  @jax.jit
  def preview(params, step):
    field_fn, background_fn = field_lib.bind(model.nerf, model.background, params)
    variance = field_lib.ipe_variance(schedules.lambda_sigma(step, config),
                                      config.field.ipe_covariance)
    out = render_kinds(field_fn, background_fn, cam, resolution, variance, headlight(cam),
                       settings)
    strip = jnp.concatenate([out[k] for k in PREVIEW_STRIP], axis=1)
    return jnp.round(strip * 255).astype(jnp.uint8)

  return lambda params, step: np.asarray(preview(params, step))


# ------------------------------------------------------------------ chunked renders at any size
# The export tools (turntable.py, mesh.py) render a Subject in fixed-size chunks of rays or
# points, so memory is bounded at any resolution and each chunk function compiles once.


def _in_chunks(fn, arrays, chunk: int):
  """fn over the leading axis of `arrays` (each (N, ...)) in chunks of exactly min(chunk, N) rows.

  The last chunk is padded by repeating row 0, so fn sees one shape and compiles once.
  Returns fn's pytree of numpy arrays, concatenated and cut back to N rows.
  """
  n = arrays[0].shape[0]
  if n == 0:
    raise ValueError('nothing to evaluate: the arrays have no rows')
  chunk = min(chunk, n)  # Fewer rows than a chunk: one call of their own size, no padding.
  parts = []
  for start in range(0, n, chunk):
    piece = [np.asarray(a[start:start + chunk]) for a in arrays]
    pad = chunk - piece[0].shape[0]
    if pad:
      piece = [np.concatenate([p, np.repeat(p[:1], pad, axis=0)]) for p in piece]
    parts.append(jax.tree.map(lambda x: np.asarray(x)[:chunk - pad], fn(*piece)))
  return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)


def make_point_fn(subject: Subject, chunk: int):
  """points (N, 3) -> (raw_density (N,), albedo (N, 3)) numpy, `chunk` points per compiled call."""
  @jax.jit
  def run(params, points):
    field_fn, _ = subject.bind(params)
    return field_fn(points, subject.variance)

  return lambda points: _in_chunks(lambda p: run(subject.params, p),
                                   [np.asarray(points, np.float32)], chunk)


def make_camera_fn(subject: Subject, chunk: int):
  """(camera, resolution, light_position (3,)) -> every kind of that view, `chunk` rays at a time.

  One pass through the field serves the three shading modes: the modes are vmapped, and only the
  shading depends on them, so the field (and its gradient) is evaluated once per sample.

  Returns a function whose result is a dict of numpy arrays: shaded, albedo, textureless
  (H, W, 3) in [0, 1] over the background; normals (H, W, 3) unit world normals of the
  opacity-weighted sum; acc (H, W); depth (H, W) expected distance along the ray, world units.
  """
  modes = jnp.array([render.ALBEDO, render.LAMBERTIAN, render.TEXTURELESS], jnp.int32)
  key = jax.random.PRNGKey(0)  # Unused: the subject's settings are deterministic.

  @jax.jit
  def run(params, origins, directions, light_position):
    field_fn, background_fn = subject.bind(params)
    out = jax.vmap(lambda mode: render.render_rays(
        field_fn, background_fn, origins, directions, key, variance=subject.variance,
        light_position=light_position, shading_mode=mode, settings=subject.settings))(modes)
    rgb = jnp.clip(out['rgb'], 0.0, 1.0)
    return dict(albedo=rgb[0], shaded=rgb[1], textureless=rgb[2], acc=out['acc'][0],
                depth=out['depth'][0], normals=camera_lib.safe_normalize(out['normals'][0]))

  def render_view(camera: camera_lib.Camera, resolution: int, light_position):
    origins, directions = camera_lib.generate_rays(camera, resolution, resolution)
    light = jnp.asarray(light_position, jnp.float32)
    out = _in_chunks(lambda o, d: run(subject.params, o, d, light),
                     [np.asarray(origins).reshape(-1, 3), np.asarray(directions).reshape(-1, 3)],
                     chunk)
    return {k: v.reshape(resolution, resolution, *v.shape[1:]) for k, v in out.items()}

  return render_view

"""Deterministic renders of a trained field for people to look at: previews and evaluation views.

Every kind the paper shows (Fig. 1, 3): shaded, albedo, textureless, normals; plus depth and
opacity. Renders are deterministic (randomized=False: sample midpoints).
"""
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import field as field_lib
from dreamfusion_jax import render
from dreamfusion_jax import schedules

KINDS = ('shaded', 'albedo', 'textureless', 'normals')
_MODES = {'shaded': render.LAMBERTIAN, 'albedo': render.ALBEDO,
          'textureless': render.TEXTURELESS}


def headlight(camera: camera_lib.Camera) -> jnp.ndarray:
  """A light above and behind the camera, so the visible side is lit. Returns (3,)."""
  return camera.origin * 1.5 + jnp.array([0.0, 0.0, 1.0])


def render_kinds(field_fn, background_fn, camera, resolution: int, variance, light_position,
                 settings: render.RenderSettings) -> Dict[str, jnp.ndarray]:
  """Every kind of one camera.

  Returns: dict of (H, W, 3) images in [0, 1] (KINDS), normal_vectors (H, W, 3) unit world
  normals of the opacity-weighted sum, acc and depth (H, W).
  """
  key = jax.random.PRNGKey(0)  # unused when settings.randomized is False
  out = {}
  for kind, mode in _MODES.items():
    r = render.render_camera(field_fn, background_fn, camera, resolution, resolution, key,
                             variance=variance, light_position=light_position,
                             shading_mode=jnp.int32(mode), settings=settings)
    out[kind] = jnp.clip(r['rgb'], 0.0, 1.0)
  acc = r['acc'][..., None]
  normals = camera_lib.safe_normalize(r['normals'])
  out['normals'] = (0.5 + 0.5 * normals) * acc + (1.0 - acc)
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
    strip = jnp.concatenate([out[k] for k in KINDS], axis=1)
    return jnp.round(strip * 255).astype(jnp.uint8)

  return lambda params, step: np.asarray(preview(params, step))

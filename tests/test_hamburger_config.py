"""configs/hamburger.py's initial density is not fog, where the paper's is.

(Its regularizer weights are checked against threestudio's reductions in
tests/test_stable_diffusion.py, which has the tiny Stable Diffusion pipeline.)
"""
import jax
import numpy as np

from configs import hamburger
from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import defaults
from dreamfusion_jax import field as field_lib
from dreamfusion_jax import render, schedules, train
from dreamfusion_jax.guidance import standins


def step0_opacity(config, seeds, resolution: int = 15):
  """[(mean opacity of the 4 corner rays, opacity of the centre ray)] of the step-0 field of each
  seed, from a typical training camera (elevation 30, distance 1.25, focal 1.0 x width) looking
  at the origin; an odd resolution puts the centre ray through the origin, where the blob is."""
  model = train.build_model(config, standins.gaussian_guidance(config))
  variance = field_lib.ipe_variance(schedules.lambda_sigma(0, config),
                                    config.field.ipe_covariance)
  camera = camera_lib.camera_from_angles(30.0, 0.0, 1.25, 1.0)
  settings = render.RenderSettings.from_config(config)._replace(normals=False)

  @jax.jit
  def acc_of(params):
    field_fn, background_fn = field_lib.bind(model.nerf, model.background, params)
    return render.render_camera(
        field_fn, background_fn, camera, resolution, resolution, jax.random.PRNGKey(0),
        variance=variance, light_position=camera.origin, shading_mode=render.ALBEDO,
        settings=settings)['acc'].reshape(resolution, resolution)

  mid, found = resolution // 2, []
  for seed in seeds:
    acc = np.asarray(acc_of(train.init_state(model, jax.random.PRNGKey(seed)).params))
    found.append((float(np.mean([acc[0, 0], acc[0, -1], acc[-1, 0], acc[-1, -1]])),
                  float(acc[mid, mid])))
  return found


def test_hamburger_starts_from_the_blob_in_empty_space_where_the_paper_starts_as_fog():
  seeds = (0, 1, 2)
  for corners, centre in step0_opacity(hamburger.get_config(), seeds):
    assert corners < 0.1, corners  # measured 0.009-0.04 over training draws
    assert centre > 0.9, centre  # the blob is opaque
  for corners, _ in step0_opacity(defaults.get_config(), seeds):
    assert corners > 0.5, corners  # measured 0.72-0.97: fog

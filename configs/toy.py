"""The offline default: DreamFusion against the exact prior of a world with a known answer.

  python run_train.py --config=configs/toy.py --workdir=runs/toy

No downloads: the prior is the exact denoiser of captioned renders of analytic objects
(dreamfusion_jax/toy.py). The target is the toy hamburger (off-centre, asymmetric, a ketchup mark
on its front); metrics.json reports PSNR / IoU / normal error against it at held-out views.
"""
from configs import base


def get_config():
  c = base.get_config()
  c.prompt = 'toy hamburger'  # The target object (a toy.objects name).
  c.guidance.name = 'empirical'  # The exact empirical prior (no weights to download).
  c.guidance.scale = 10.0  # omega; the toy prior's classes are far apart, 100 oversaturates.
  c.num_steps = 1_000
  c.render.resolution = 32
  c.render.num_samples = 32
  c.render.num_importance_samples = 16
  c.field.width = 64
  c.field.num_blocks = 2
  c.field.bg_width = 16
  c.toy.images_per_object = 600
  c.shading.albedo_only_steps = 100
  c.schedule.lambda_sigma_steps = 500
  c.schedule.orientation_steps = 500
  c.optimizer.name = 'adam'
  c.optimizer.lr_init = 1e-4
  c.optimizer.lr_peak = 1e-2
  c.optimizer.lr_final = 1e-3
  c.optimizer.warmup_steps = 100
  c.optimizer.decay_end_step = 1_000
  c.log.every = 10
  c.log.preview_every = 100
  c.log.preview_resolution = 32
  c.log.checkpoint_every = 500
  return c

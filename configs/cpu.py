"""A small config for laptops and tests: the paper's loop at a size one CPU core runs in seconds.

Every feature of the paper stays on (shading schedule, normals, orientation and opacity losses,
Shampoo); only sizes shrink, and the schedules shrink with them so a short run sees all phases.
"""
from dreamfusion_jax import defaults
from dreamfusion_jax import schedules


def get_config():
  c = defaults.get_config()
  c.num_steps = 200  # A short run.
  c.render.resolution = 32  # 32x32 renders instead of 64x64.
  c.render.batch_size = 1  # One view per step instead of the paper's 4.
  c.render.num_samples = 32  # Stratified samples per ray.
  c.render.num_importance_samples = 16  # Importance samples per ray.
  c.field.width = 32  # Narrower MLP ...
  c.field.num_blocks = 2  # ... with fewer residual blocks.
  c.field.bg_width = 16  # A smaller background MLP.
  # Every schedule scaled to the run: warm-ups 20 steps, the anneals 100, the cosine 200.
  c.update_from_flattened_dict(schedules.short_run_lengths(c.num_steps))
  c.log.every = 10  # Log more often in a short run.
  c.log.preview_every = 50  # Preview more often in a short run.
  c.log.preview_resolution = 32  # Preview at the render size.
  c.log.checkpoint_every = 100  # Checkpoint more often in a short run.
  c.optimizer.lr_peak = 1e-2  # Shampoo's grafted steps have RMS lr: a short run needs a larger lr.
  return c

"""Schedules: pure functions of the training step, each with its own length in steps.

None of them depends on num_steps, so extending a run never changes its past [P A.2; paper.md §7].
All are jnp functions evaluated inside the compiled update; short_run_lengths() gives the
lengths that shorter runs (configs/cpu.py, configs/toy.py, the toy sweeps) scale with their size.
"""
from fractions import Fraction
from typing import Dict

import jax.numpy as jnp

from dreamfusion_jax import render


# Each schedule length of a short run as a fraction of its num_steps: the shading and lr
# warm-ups a tenth, the IPE and orientation anneals half, the lr cosine the whole run (the
# paper's 15,000-step run has its own lengths, dreamfusion_jax/defaults.py).
SHORT_RUN = {
    'shading.albedo_only_steps': Fraction(1, 10),
    'schedule.lambda_sigma_steps': Fraction(1, 2),
    'schedule.orientation_steps': Fraction(1, 2),
    'optimizer.warmup_steps': Fraction(1, 10),
    'optimizer.decay_end_step': Fraction(1),
}


def short_run_lengths(num_steps: int) -> Dict[str, int]:
  """{dotted config field: length} of every schedule of a run of num_steps (SHORT_RUN, rounded
  half to even, at least 1), for config.update_from_flattened_dict."""
  return {name: max(1, round(fraction * num_steps)) for name, fraction in SHORT_RUN.items()}


def _ramp(step, num_steps: int):
  """Fraction of a ramp done at `step`: 0 at step 0, 1 from num_steps on."""
  return jnp.clip(jnp.asarray(step, jnp.float32) / max(num_steps, 1), 0.0, 1.0)


def lambda_sigma(step, config):
  """IPE covariance scale, linear start -> end over lambda_sigma_steps, then constant [P A.2]."""
  s = config.schedule
  r = _ramp(step, s.lambda_sigma_steps)
  return (1.0 - r) * s.lambda_sigma_start + r * s.lambda_sigma_end


def orientation_weight(step, config):
  """Orientation-loss weight, start -> end over orientation_steps [P A.2]; linear or geometric."""
  s = config.schedule
  r = _ramp(step, s.orientation_steps)
  if s.orientation_interp == 'linear':
    return (1.0 - r) * s.orientation_start + r * s.orientation_end
  if s.orientation_interp == 'log':
    return s.orientation_start * (s.orientation_end / s.orientation_start) ** r
  raise ValueError("schedule.orientation_interp must be 'linear' or 'log', "
                   f'got {s.orientation_interp!r}')


def shading_probs(step, config):
  """Probabilities of (albedo, lambertian, textureless) renders at `step` [P A.2].

  Albedo only for the first albedo_only_steps, then albedo_prob albedo and the rest shaded, of
  which textureless_prob textureless. The ablation toggles remove lighting or textureless.
  Returns: (3,) in the order of render.SHADING_MODES.
  """
  sh, ab = config.shading, config.ablation
  textureless = sh.textureless_prob if ab.textureless else 0.0
  shaded = 1.0 - sh.albedo_prob
  mix = jnp.array([sh.albedo_prob, shaded * (1.0 - textureless), shaded * textureless])
  albedo_only = jnp.zeros(3).at[render.ALBEDO].set(1.0)
  if not ab.shading:
    return albedo_only
  return jnp.where(step < sh.albedo_only_steps, albedo_only, mix)


def learning_rate(config):
  """The paper's lr schedule, a function of the step [P A.2].

  Linear warm-up lr_init -> lr_peak over warmup_steps, then cosine to lr_final at decay_end_step,
  constant after. Written as init + r (peak - init) rather than optax's (init - peak)(1 - r) + peak,
  which cancels catastrophically in f32 at the paper's lr_init = 1e-9.
  """
  o = config.optimizer
  decay_steps = max(o.decay_end_step - o.warmup_steps, 1)

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    warm = o.lr_init + _ramp(step, o.warmup_steps) * (o.lr_peak - o.lr_init)
    cos = 0.5 * (1.0 + jnp.cos(jnp.pi * _ramp(step - o.warmup_steps, decay_steps)))
    decay = o.lr_final + cos * (o.lr_peak - o.lr_final)
    return jnp.where(step < o.warmup_steps, warm, decay)

  return schedule

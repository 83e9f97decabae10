"""View-dependent prompts [P §3.2, A.2; paper.md §5].

The table of prompt strings is built once, in Python, by view_prompts(); its rows are encoded
once by the text encoder. Inside the compiled step the per-view choice is a vector of blend
weights over the table's rows (view_weights), so the conditioning embedding is
weights @ embeddings and no string ever enters a trace.

Rows of the table (ROW_* below):
  0 plain prompt, 1 front view, 2 side view, 3 back view, 4 overhead view.

Angles follow dreamfusion_jax/camera.py: azimuth 0 is the front (+x), measured in degrees and
wrapped to [-180, 180) here, so |azimuth| is the angle away from the front; elevation +90 is
straight above.

Rules [P §3.2, A.2]: elevation > cfg.overhead_deg is "overhead"; otherwise "front" if
|az| < cfg.front_deg, "back" if |az| > cfg.back_deg, "side" otherwise (the paper's "text
embedding closest to the sampled azimuth"; the boundaries are threestudio's [NIP]).
cfg.view_mode picks the weights:
  'discrete'     one-hot on that row (the paper's choice, A.2);
  'interpolated' overhead still one-hot; below it front/side/back blended linearly in |az|:
                 (1 - |az|/90, |az|/90, 0) on [0, 90], (0, 2 - |az|/90, |az|/90 - 1) on
                 [90, 180] (stable-dreamfusion's scheme);
  'none'         one-hot on row 0, the plain prompt, for every view (the ablation).
"""
import jax
import jax.numpy as jnp

from dreamfusion_jax.camera import wrap_degrees

VIEWS = ('front', 'side', 'back', 'overhead')
ROW_PLAIN, ROW_FRONT, ROW_SIDE, ROW_BACK, ROW_OVERHEAD = 0, 1, 2, 3, 4
NUM_ROWS = 1 + len(VIEWS)


def view_prompts(prompt: str) -> list[str]:
  """The prompt table, rows 0..4: plain, then "<prompt>, <view> view" (threestudio's format).

  Args:
    prompt: the text prompt.

  Returns:
    [prompt, f'{prompt}, front view', f'{prompt}, side view', f'{prompt}, back view',
     f'{prompt}, overhead view'].
  """
  return [prompt] + [f'{prompt}, {view} view' for view in VIEWS]


def _is_overhead(elevation_deg: jax.Array, cfg) -> jax.Array:
  """(...) bool: elevation strictly above cfg.overhead_deg [P §3.2]."""
  return jnp.asarray(elevation_deg) > float(cfg.overhead_deg)


def _abs_azimuth(azimuth_deg: jax.Array) -> jax.Array:
  """(...) |azimuth| in [0, 180] degrees, after wrapping to [-180, 180)."""
  return jnp.abs(wrap_degrees(jnp.asarray(azimuth_deg, jnp.float32)))


def _azimuth_row(azimuth_deg: jax.Array, cfg) -> jax.Array:
  """(...) int32 row by azimuth alone: front if |az| < front_deg, back if > back_deg, else side."""
  a = _abs_azimuth(azimuth_deg)
  return jnp.where(a < float(cfg.front_deg), ROW_FRONT,
                   jnp.where(a > float(cfg.back_deg), ROW_BACK, ROW_SIDE)).astype(jnp.int32)


def view_index(elevation_deg: jax.Array, azimuth_deg: jax.Array, cfg) -> jax.Array:
  """Row of the discrete (nearest-embedding) rule, whatever cfg.view_mode says [P A.2].

  Useful for captions and per-view metrics; jittable and vmappable, elementwise on arrays.

  Args:
    elevation_deg: (...) elevation in degrees.
    azimuth_deg: (...) azimuth in degrees, 0 = front; any range (wrapped here).
    cfg: config.prompts (reads overhead_deg, front_deg, back_deg).

  Returns:
    (...) int32 row in 1..4 (front, side, back, overhead).
  """
  overhead = _is_overhead(elevation_deg, cfg)
  return jnp.where(overhead, ROW_OVERHEAD, _azimuth_row(azimuth_deg, cfg)).astype(jnp.int32)


def _discrete_weights(elevation_deg, azimuth_deg, cfg) -> jax.Array:
  """(..., 5) one-hot on view_index: the paper's nearest view word [P A.2]."""
  return jax.nn.one_hot(view_index(elevation_deg, azimuth_deg, cfg), NUM_ROWS, dtype=jnp.float32)


def _none_weights(elevation_deg, azimuth_deg, cfg) -> jax.Array:
  """(..., 5) one-hot on row 0, the plain prompt, for every view (no view dependence)."""
  del cfg
  shape = jnp.broadcast_shapes(jnp.shape(elevation_deg), jnp.shape(azimuth_deg))
  return jnp.broadcast_to(jax.nn.one_hot(ROW_PLAIN, NUM_ROWS, dtype=jnp.float32),
                          shape + (NUM_ROWS,))


def _interpolated_weights(elevation_deg, azimuth_deg, cfg) -> jax.Array:
  """(..., 5) front/side/back blended linearly in |az| (0, 90, 180 deg); overhead one-hot."""
  a = _abs_azimuth(azimuth_deg) / 90.0  # in [0, 2]
  w_front = jnp.clip(1.0 - a, 0.0, 1.0)
  w_side = jnp.clip(1.0 - jnp.abs(a - 1.0), 0.0, 1.0)
  w_back = jnp.clip(a - 1.0, 0.0, 1.0)
  zeros = jnp.zeros_like(a)
  blend = jnp.stack([zeros, w_front, w_side, w_back, zeros], axis=-1)
  overhead = jax.nn.one_hot(ROW_OVERHEAD, NUM_ROWS, dtype=jnp.float32)
  is_over = _is_overhead(elevation_deg, cfg)[..., None]
  return jnp.where(is_over, overhead, blend)


_WEIGHT_RULES = {
    'discrete': _discrete_weights,
    'interpolated': _interpolated_weights,
    'none': _none_weights,
}


def view_weights(elevation_deg: jax.Array, azimuth_deg: jax.Array, cfg) -> jax.Array:
  """Blend weights over the view_prompts() rows for one view [P §3.2, A.2; paper.md §5].

  The conditioning embedding is weights @ row_embeddings. The mode is read from
  cfg.view_mode at trace time (a Python string).

  Args:
    elevation_deg: (...) elevation in degrees.
    azimuth_deg: (...) azimuth in degrees, 0 = front; any range (wrapped here).
    cfg: config.prompts (view_mode, overhead_deg, front_deg, back_deg).

  Returns:
    (..., 5) float32 non-negative weights summing to 1.

  Raises:
    ValueError: cfg.view_mode is not one of 'discrete', 'interpolated', 'none'.
  """
  mode = cfg.view_mode
  if mode not in _WEIGHT_RULES:
    raise ValueError(
        f'prompts.view_mode must be one of {tuple(_WEIGHT_RULES)}, got {mode!r}.')
  return _WEIGHT_RULES[mode](elevation_deg, azimuth_deg, cfg)

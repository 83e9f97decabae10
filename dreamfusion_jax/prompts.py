"""View-dependent prompts [P §3.2, A.2; paper.md §5].

The table of prompt strings is built once, in Python, by view_prompts(); its rows are encoded
once by the text encoder. Inside the compiled step the per-view choice is a vector of blend
weights over the table's rows (view_weights), so the conditioning embedding is
weights @ embeddings and no string ever enters a trace.

Rows of the table (ROW_* and FINE_* below):
  'discrete', 'interpolated', 'none':  0 plain, 1 front, 2 side, 3 back, 4 overhead view.
  'fine':  0 plain, 1 front, 2 left side, 3 right side, 4 back, 5 oblique top, 6 overhead view.

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
  'none'         one-hot on row 0, the plain prompt, for every view (the ablation);
  'fine'         one-hot on the finer buckets: elevation > overhead_deg is "overhead", else
                 elevation > oblique_deg is "oblique top", else front / back as above and the
                 side band split by the sign of the azimuth: az > 0 is "left side", az < 0
                 "right side". Left is the object's own left: it faces +x with +z up, so its
                 left hand is +y, where a camera at azimuth +90 stands.

Negatives per view (negative_table): which rows a view must not look like, and how much. Used
as per-view negative prompts (prompts.negatives='views': the unconditional embedding of a view
is the weighted mean of its negatives' embeddings) or by Perp-Neg (prompts.negatives='perp_neg',
sds.perp_neg_guidance). The weights are threestudio's Perp-Neg weights at the bucket centres
(threestudio/models/prompt_processors/base.py: front -> side 1.574, side -> front 1.574, back ->
front 1.967 and side 0.394, each a config field); 'fine' splits "side" into its two halves and
adds the opposite side as a negative of each side (prompts.neg_side_opposite, our choice).
"""
import jax
import jax.numpy as jnp
import numpy as np

from dreamfusion_jax.camera import wrap_degrees

VIEW_WORDS = ('front', 'side', 'back', 'overhead')
ROW_PLAIN, ROW_FRONT, ROW_SIDE, ROW_BACK, ROW_OVERHEAD = 0, 1, 2, 3, 4
NUM_ROWS = 1 + len(VIEW_WORDS)
FINE_VIEW_WORDS = ('front', 'left side', 'right side', 'back', 'oblique top', 'overhead')
FINE_FRONT, FINE_LEFT, FINE_RIGHT, FINE_BACK, FINE_OBLIQUE, FINE_OVERHEAD = 1, 2, 3, 4, 5, 6
VIEW_MODES = ('discrete', 'interpolated', 'none', 'fine')
NEGATIVES = ('none', 'views', 'perp_neg')
MAX_NEGATIVES = 3  # Negatives per row in negative_table (the back view's in 'fine').


def view_words(view_mode: str = 'discrete') -> tuple:
  """The view words of a mode's table rows 1.. (FINE_VIEW_WORDS for 'fine', else VIEW_WORDS)."""
  return FINE_VIEW_WORDS if view_mode == 'fine' else VIEW_WORDS


def num_rows(view_mode: str = 'discrete') -> int:
  return 1 + len(view_words(view_mode))


def view_prompts(prompt: str, view_mode: str = 'discrete') -> list[str]:
  """The prompt table: plain, then "<prompt>, <view> view" (threestudio's format).

  Args:
    prompt: the text prompt.
    view_mode: 'fine' for the fine table; any other mode has the paper's table.

  Returns:
    [prompt, f'{prompt}, front view', f'{prompt}, side view', f'{prompt}, back view',
     f'{prompt}, overhead view'], or with 'fine' the rows of FINE_VIEW_WORDS.
  """
  return [prompt] + [f'{prompt}, {view} view' for view in view_words(view_mode)]


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


def _fine_index(elevation_deg: jax.Array, azimuth_deg: jax.Array, cfg) -> jax.Array:
  """(...) int32 row of the 'fine' table (module docstring)."""
  az = wrap_degrees(jnp.asarray(azimuth_deg, jnp.float32))
  coarse = _azimuth_row(az, cfg)
  side = jnp.where(az > 0, FINE_LEFT, FINE_RIGHT)
  row = jnp.where(coarse == ROW_FRONT, FINE_FRONT, jnp.where(coarse == ROW_BACK, FINE_BACK, side))
  el = jnp.asarray(elevation_deg)
  row = jnp.where(el > float(cfg.oblique_deg), FINE_OBLIQUE, row)
  return jnp.where(_is_overhead(el, cfg), FINE_OVERHEAD, row).astype(jnp.int32)


def view_index(elevation_deg: jax.Array, azimuth_deg: jax.Array, cfg) -> jax.Array:
  """Row of the nearest view word [P A.2]: the 'fine' table's for view_mode 'fine', else the
  paper's (whether the mode then blends or ignores the rows).

  Useful for captions and per-view metrics; jittable and vmappable, elementwise on arrays.

  Args:
    elevation_deg: (...) elevation in degrees.
    azimuth_deg: (...) azimuth in degrees, 0 = front; any range (wrapped here).
    cfg: config.prompts (reads view_mode, overhead_deg, front_deg, back_deg, oblique_deg).

  Returns:
    (...) int32 row in 1..4 (front, side, back, overhead), or 1..6 for 'fine'.
  """
  if cfg.view_mode == 'fine':
    return _fine_index(elevation_deg, azimuth_deg, cfg)
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


def _fine_weights(elevation_deg, azimuth_deg, cfg) -> jax.Array:
  """(..., 7) one-hot on the 'fine' table's row."""
  return jax.nn.one_hot(_fine_index(elevation_deg, azimuth_deg, cfg), num_rows('fine'),
                        dtype=jnp.float32)


_WEIGHT_RULES = {
    'discrete': _discrete_weights,
    'interpolated': _interpolated_weights,
    'none': _none_weights,
    'fine': _fine_weights,
}
assert tuple(_WEIGHT_RULES) == VIEW_MODES


def view_weights(elevation_deg: jax.Array, azimuth_deg: jax.Array, cfg) -> jax.Array:
  """Blend weights over the view_prompts() rows for one view [P §3.2, A.2; paper.md §5].

  The conditioning embedding is weights @ row_embeddings. The mode is read from
  cfg.view_mode at trace time (a Python string).

  Args:
    elevation_deg: (...) elevation in degrees.
    azimuth_deg: (...) azimuth in degrees, 0 = front; any range (wrapped here).
    cfg: config.prompts (view_mode, overhead_deg, front_deg, back_deg, oblique_deg).

  Returns:
    (..., num_rows(cfg.view_mode)) float32 non-negative weights summing to 1.

  Raises:
    ValueError: cfg.view_mode is not one of VIEW_MODES.
  """
  mode = cfg.view_mode
  if mode not in _WEIGHT_RULES:
    raise ValueError(
        f'prompts.view_mode must be one of {tuple(_WEIGHT_RULES)}, got {mode!r}.')
  return _WEIGHT_RULES[mode](elevation_deg, azimuth_deg, cfg)


def negative_table(cfg):
  """Each row's negative rows and weights (module docstring), padded with weight 0.

  Args:
    cfg: config.prompts (view_mode, neg_front_side, neg_side_front, neg_back_front,
      neg_back_side, neg_side_opposite).

  Returns:
    rows: (R, MAX_NEGATIVES) int32 rows of the view_prompts table, R = num_rows(view_mode).
    weights: (R, MAX_NEGATIVES) float32 >= 0; a row with no negatives (plain, overhead, oblique
      top) has all weights 0.
  """
  fs, sf = float(cfg.neg_front_side), float(cfg.neg_side_front)
  bf, bs, opp = float(cfg.neg_back_front), float(cfg.neg_back_side), float(cfg.neg_side_opposite)
  if cfg.view_mode == 'fine':
    negatives = {
        FINE_FRONT: [(FINE_LEFT, fs / 2), (FINE_RIGHT, fs / 2)],
        FINE_LEFT: [(FINE_FRONT, sf), (FINE_RIGHT, opp)],
        FINE_RIGHT: [(FINE_FRONT, sf), (FINE_LEFT, opp)],
        FINE_BACK: [(FINE_FRONT, bf), (FINE_LEFT, bs / 2), (FINE_RIGHT, bs / 2)],
    }
  else:
    negatives = {
        ROW_FRONT: [(ROW_SIDE, fs)],
        ROW_SIDE: [(ROW_FRONT, sf)],
        ROW_BACK: [(ROW_FRONT, bf), (ROW_SIDE, bs)],
    }
  n = num_rows(cfg.view_mode)
  rows = np.zeros((n, MAX_NEGATIVES), np.int32)
  weights = np.zeros((n, MAX_NEGATIVES), np.float32)
  for row, negs in negatives.items():
    for k, (neg_row, weight) in enumerate(negs):
      rows[row, k], weights[row, k] = neg_row, weight
  return rows, weights

"""The NeRF MLP and the background MLP (paper §3.1, A.2; paper.md §2).

A *field* is any function `(means (..., 3), variance) -> (raw_density (...), albedo (..., 3))`;
the renderer applies density = exp(raw_density) and takes normals from the gradient of
raw_density. The NeRF MLP below is one field; analytic shapes (tests, the toy world) are others.
"""
from typing import Callable, Tuple

import flax.linen as nn
import jax.numpy as jnp

from dreamfusion_jax import encoding

FieldFn = Callable[[jnp.ndarray, jnp.ndarray], Tuple[jnp.ndarray, jnp.ndarray]]


def density_bias(means: jnp.ndarray, scale: float, std: float) -> jnp.ndarray:
  """DreamFusion's spatial density blob lambda_tau exp(-|mu|^2 / (2 sigma_tau^2)) [P A.2].

  Added to the MLP's density output BEFORE the exp activation, as both peers do (paper.md §2).

  Args:
    means: (..., 3) sample positions.
    scale: lambda_tau (5 in the paper).
    std: sigma_tau (0.2 in the paper).

  Returns:
    (...,) the bias.
  """
  return scale * jnp.exp(-jnp.sum(means ** 2, axis=-1) / (2.0 * std ** 2))


def ipe_variance(lambda_sigma: jnp.ndarray, reading: str) -> jnp.ndarray:
  """The isotropic IPE variance for the annealed scale lambda_Sigma (config field.ipe_covariance).

  'lambda' reads the paper's Sigma = lambda_Sigma I literally; 'lambda_squared' is Sigma = lambda^2 I.
  """
  if reading == 'lambda':
    return lambda_sigma
  if reading == 'lambda_squared':
    return lambda_sigma ** 2
  raise ValueError(f"field.ipe_covariance must be 'lambda' or 'lambda_squared', got {reading!r}")


class NeRFMLP(nn.Module):
  """mip-NeRF-360-style MLP of position only (no view direction: it models albedo) [P §3.1, A.2].

  IPE(mu, Sigma) -> Dense(width) -> swish -> num_blocks x pre-LayerNorm residual blocks
  [x + Dense(swish(Dense(LN(x))))] -> LN -> Dense(4). The block layout is the same group's Dream
  Fields mipnerf.py template (paper.md §2 [NIP]).
  """
  num_freqs: int = 8  # IPE levels L.
  num_blocks: int = 5
  width: int = 128
  density_bias_scale: float = 5.0
  density_bias_std: float = 0.2
  density_offset: float = 0.0  # Constant added to the raw density (config field.density_offset).

  @nn.compact
  def __call__(self, means: jnp.ndarray, variance: jnp.ndarray):
    """Args: means (..., 3); variance () isotropic IPE variance.

    Returns:
      raw_density: (...,) pre-activation density (density = exp(raw_density)).
      albedo: (..., 3) in (0, 1).
    """
    x = encoding.integrated_pos_enc(means, variance, self.num_freqs)
    x = nn.swish(nn.Dense(self.width)(x))
    for _ in range(self.num_blocks):
      h = nn.LayerNorm()(x)
      h = nn.Dense(self.width)(nn.swish(nn.Dense(self.width)(h)))
      x = x + h
    out = nn.Dense(4)(nn.LayerNorm()(x))
    raw_density = out[..., 0] + self.density_offset + density_bias(
        means, self.density_bias_scale, self.density_bias_std)
    return raw_density, nn.sigmoid(out[..., 1:])


class BackgroundMLP(nn.Module):
  """Environment-map colour from the positionally encoded ray direction [P §3.1].

  kind='white' keeps the weights but returns white: a known background (the toy world's);
  kind='random' returns white too (evaluation, previews): training replaces it per view with a
  solid background drawn from toy.backgrounds (train.render_views).
  """
  num_freqs: int = 4
  width: int = 32
  num_layers: int = 2
  kind: str = 'mlp'

  @nn.compact
  def __call__(self, directions: jnp.ndarray) -> jnp.ndarray:
    """Args: directions (..., 3) unit vectors. Returns (..., 3) colours in (0, 1)."""
    x = encoding.pos_enc(directions, self.num_freqs)
    for _ in range(self.num_layers):
      x = nn.swish(nn.Dense(self.width)(x))
    color = nn.sigmoid(nn.Dense(3)(x))
    if self.kind in ('white', 'random'):
      return jnp.ones_like(color)
    if self.kind != 'mlp':
      raise ValueError(f"field.background must be 'mlp', 'white' or 'random', got {self.kind!r}")
    return color


def build(config):
  """The NeRF and background modules of a config (config.field)."""
  f = config.field
  nerf = NeRFMLP(num_freqs=f.num_freqs, num_blocks=f.num_blocks, width=f.width,
                 density_bias_scale=f.density_bias_scale, density_bias_std=f.density_bias_std,
                 density_offset=f.density_offset)
  background = BackgroundMLP(num_freqs=f.bg_num_freqs, width=f.bg_width,
                             num_layers=f.bg_num_layers, kind=f.background)
  return nerf, background


def bind(nerf: NeRFMLP, background: BackgroundMLP, params):
  """Field and background functions of a params tree {'nerf': ..., 'background': ...}.

  Returns: field_fn (means (..., 3), variance) -> (raw_density, albedo), and
    background_fn (directions (..., 3)) -> colours (..., 3), as render.render_rays takes them.
  """
  def field_fn(means, variance):
    return nerf.apply({'params': params['nerf']}, means, variance)

  def background_fn(directions):
    return background.apply({'params': params['background']}, directions)

  return field_fn, background_fn

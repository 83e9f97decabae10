"""A Gaussian pixel-space prior with an exact noise prediction: the closed-form check of SDS.

Each prompt of a fixed vocabulary names an image distribution N(mean_p, s^2 I). Under the forward
process z_t = alpha x + sigma eps, z_t ~ N(alpha mean_p, (alpha^2 s^2 + sigma^2) I), so the ideal
noise prediction is exact:

  eps(z_t) = E[eps | z_t] = sigma (z_t - alpha mean_p) / (alpha^2 s^2 + sigma^2).

An embedding is a row of blend weights over the vocabulary (one-hot for a single prompt), so
view-prompt blending works as for text embeddings. With classifier-free guidance, SDS against this
prior drives x to mean_c + omega (mean_c - mean_u) (tests/test_sds.py derives it).
"""
from typing import Sequence

import flax.struct
import jax.numpy as jnp

from dreamfusion_jax.guidance.schedule import CosineSchedule


@flax.struct.dataclass
class GaussianPriorParams:
  means: jnp.ndarray  # (P, H, W, 3) one mean image per vocabulary prompt.
  std: jnp.ndarray  # () the images' per-pixel standard deviation s.


class GaussianPrior:
  """The guidance interface (see guidance/__init__.py) for a vocabulary of Gaussian images."""

  def __init__(self, vocabulary: Sequence[str], means: jnp.ndarray, std: float):
    if len(vocabulary) != means.shape[0]:
      raise ValueError(f'{len(vocabulary)} prompts but {means.shape[0]} mean images')
    self.vocabulary = list(vocabulary)
    self.params = GaussianPriorParams(means=jnp.asarray(means, jnp.float32),
                                      std=jnp.asarray(std, jnp.float32))
    self.schedule = CosineSchedule()

  def embed(self, prompts: Sequence[str]) -> jnp.ndarray:
    """(P,) strings -> (P, V) one-hot rows over the vocabulary."""
    missing = [p for p in prompts if p not in self.vocabulary]
    if missing:
      raise ValueError(f'prompts {missing} are not in this prior\'s vocabulary {self.vocabulary}')
    rows = [self.vocabulary.index(p) for p in prompts]
    return jnp.eye(len(self.vocabulary), dtype=jnp.float32)[jnp.array(rows)]

  def encode(self, params, x):
    """Pixel space: z = x. (B, H, W, 3) -> (B, H, W, 3)."""
    del params
    return x

  def eps(self, params, z_t, t, emb):
    """Exact E[eps | z_t] for the Gaussian whose mean is the embedding's blend of means.

    z_t (B, H, W, 3), t (B,), emb (B, V). Returns (B, H, W, 3).
    """
    alpha, sigma = self.schedule.alpha_sigma(t)
    alpha, sigma = alpha[:, None, None, None], sigma[:, None, None, None]
    mean = jnp.einsum('bv,vhwc->bhwc', emb, params.means)
    return sigma * (z_t - alpha * mean) / (alpha ** 2 * params.std ** 2 + sigma ** 2)

"""Positional encodings: mip-NeRF's integrated positional encoding (IPE) and plain sinusoids.

DreamFusion encodes each sample with IPE of an isotropic Gaussian N(mu, Sigma), Sigma = lambda_Sigma I,
whose scale is annealed from coarse to fine (paper A.2; paper.md §2). For a Gaussian,
E[sin(a x)] = sin(a mu) exp(-a^2 var / 2) and E[cos(a x)] = cos(a mu) exp(-a^2 var / 2)
(mip-NeRF, Barron et al. 2021, Eq. 14), so IPE is sinusoids attenuated per frequency.
"""
import jax.numpy as jnp


def frequencies(num_freqs: int) -> jnp.ndarray:
  """The frequencies 2^0 .. 2^(L-1) of an L-level encoding. Returns (L,)."""
  return 2.0 ** jnp.arange(num_freqs, dtype=jnp.float32)


def integrated_pos_enc(means: jnp.ndarray, variances: jnp.ndarray, num_freqs: int) -> jnp.ndarray:
  """Expected sinusoidal encoding of N(means, diag(variances)) (mip-NeRF Eq. 14).

  Args:
    means: (..., D) Gaussian means.
    variances: per-axis variances, broadcastable to (..., D); a scalar for isotropic Sigma.
    num_freqs: L, frequencies 2^0 .. 2^(L-1).

  Returns:
    (..., 2 * L * D): [sin features (L*D), cos features (L*D)], frequency-major within each half.
  """
  scales = frequencies(num_freqs)
  variances = jnp.broadcast_to(variances, means.shape)
  scaled_means = (means[..., None, :] * scales[:, None]).reshape(*means.shape[:-1], -1)
  scaled_vars = (variances[..., None, :] * scales[:, None] ** 2).reshape(*means.shape[:-1], -1)
  attenuation = jnp.exp(-0.5 * scaled_vars)
  return jnp.concatenate([jnp.sin(scaled_means) * attenuation,
                          jnp.cos(scaled_means) * attenuation], axis=-1)


def pos_enc(x: jnp.ndarray, num_freqs: int) -> jnp.ndarray:
  """NeRF's positional encoding with the input appended (used for ray directions).

  Args:
    x: (..., D).
    num_freqs: L, frequencies 2^0 .. 2^(L-1).

  Returns:
    (..., D + 2 * L * D): [x, sin features, cos features].
  """
  return jnp.concatenate([x, integrated_pos_enc(x, jnp.zeros((), x.dtype), num_freqs)], axis=-1)

"""Noise schedules of variance-preserving diffusion: z_t = alpha_t x + sigma_t eps, alpha^2 + sigma^2 = 1.

Each schedule samples the timestep of one SDS draw and maps it to (alpha_t, sigma_t) [P §2, §3.2].
A schedule is a pytree, so it travels into the compiled update as arrays.
"""
import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class DiscreteSchedule:
  """A T-step schedule given by alphas_cumprod (Stable Diffusion's, DeepFloyd IF's, ...).

  t is an int32 in [round(lo T), round(hi T)] uniformly: 20..980 for T = 1000 and the paper's
  U(0.02, 0.98), as both peers do (paper.md §1 [NIP]).
  """
  alphas_cumprod: jnp.ndarray  # (T,)

  def sample_t(self, key, shape, t_range):
    num_steps = self.alphas_cumprod.shape[0]
    lo, hi = (int(round(r * num_steps)) for r in t_range)
    return jax.random.randint(key, shape, lo, hi + 1)

  def alpha_sigma(self, t):
    abar = self.alphas_cumprod[t]
    return jnp.sqrt(abar), jnp.sqrt(1.0 - abar)


@flax.struct.dataclass
class CosineSchedule:
  """Continuous time t in [0, 1] with alpha_t = cos(pi t / 2), sigma_t = sin(pi t / 2).

  The variance-preserving cosine schedule (Nichol & Dhariwal 2021 without the offset); the paper's
  Imagen prior is continuous-time [P §3.2]. Used by pixel-space priors.
  """

  def sample_t(self, key, shape, t_range):
    return jax.random.uniform(key, shape, minval=t_range[0], maxval=t_range[1])

  def alpha_sigma(self, t):
    return jnp.cos(0.5 * jnp.pi * t), jnp.sin(0.5 * jnp.pi * t)

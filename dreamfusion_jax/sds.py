"""Score Distillation Sampling (paper §2.1, Eq. 3, Fig. 8; paper.md §1).

Fig. 8's pseudocode, line for line (sds_loss below):

  z       = encode(x)                         # identity for pixel priors, VAE for Stable Diffusion
  t, eps  ~ schedule, N(0, I)
  z_t     = alpha_t z + sigma_t eps
  eps_hat = (1 + omega) eps(z_t; y) - omega eps(z_t)        # classifier-free guidance, omega = 100
  loss    = w(t) sum(stop_gradient(eps_hat - eps) * z)      # d loss / d z = w(t) (eps_hat - eps)

The guidance network only sees stop_gradient inputs, so no UNet backward is ever traced.
"""
from typing import Dict, Tuple

import jax
import jax.numpy as jnp

WEIGHTINGS = ('sigma2', 'uniform')


def classifier_free_guidance(eps_uncond, eps_cond, omega):
  """eps_hat = (1 + omega) eps_cond - omega eps_uncond, the paper's convention [P §2].

  diffusers writes eps_u + g (eps_c - eps_u): g = omega + 1. threestudio's scale is omega.
  """
  return (1.0 + omega) * eps_cond - omega * eps_uncond


def sds_weight(alpha, sigma, weighting: str):
  """w(t): 'sigma2' = sigma_t^2 (the paper's) or 'uniform' = 1 [P §3.2]. Shapes as alpha."""
  del alpha
  if weighting == 'sigma2':
    return sigma ** 2
  if weighting == 'uniform':
    return jnp.ones_like(sigma)
  raise ValueError(f'guidance.weighting must be one of {WEIGHTINGS}, got {weighting!r}')


def _expand(v, like):
  """(B,) -> (B, 1, ..., 1) broadcastable against `like` (B, ...)."""
  return v.reshape(v.shape + (1,) * (like.ndim - 1))


def guided_eps(guidance, gparams, z_t, t, cond_emb, uncond_emb, omega):
  """CFG noise prediction from ONE eps call on the stacked [uncond, cond] batch.

  Args: z_t (B, ...); t (B,); cond_emb, uncond_emb (B, ...). Returns eps_hat (B, ...).
  """
  z_t, t = jax.lax.stop_gradient((z_t, t))
  both = guidance.eps(gparams, jnp.concatenate([z_t, z_t]), jnp.concatenate([t, t]),
                      jnp.concatenate([uncond_emb, cond_emb]))
  eps_uncond, eps_cond = jnp.split(both, 2)
  return classifier_free_guidance(eps_uncond, eps_cond, omega)


def sds_loss(guidance, gparams, x, cond_emb, uncond_emb, key, *, omega: float, weighting: str,
             t_range: Tuple[float, float]) -> Tuple[jnp.ndarray, Dict[str, jnp.ndarray]]:
  """The SDS surrogate of a batch of renders, averaged over the batch.

  Its gradient w.r.t. the render is exactly w(t) (eps_hat - eps)^T dz/dx per view [P Eq. 3].

  Args:
    guidance: a backend (guidance/__init__.py); gparams its frozen params.
    x: (B, H, W, 3) renders in [0, 1].
    cond_emb, uncond_emb: (B, ...) per-view conditional and unconditional embeddings.
    key: PRNG key for t and eps.

  Returns:
    loss: () mean over views of w(t) sum(stop_gradient(eps_hat - eps) * z).
    aux: t (B,) and grad_norm (B,) = |w(t) (eps_hat - eps)|, the SDS gradient on z.
  """
  z = guidance.encode(gparams, x)
  key_t, key_eps = jax.random.split(key)
  t = guidance.schedule.sample_t(key_t, z.shape[:1], t_range)
  alpha, sigma = guidance.schedule.alpha_sigma(t)
  eps = jax.random.normal(key_eps, z.shape, z.dtype)
  z_t = _expand(alpha, z) * z + _expand(sigma, z) * eps
  eps_hat = guided_eps(guidance, gparams, z_t, t, cond_emb, uncond_emb, omega)
  w = sds_weight(alpha, sigma, weighting)
  residual = jax.lax.stop_gradient(eps_hat - eps).reshape(z.shape[0], -1)
  per_view = w * jnp.sum(residual * z.reshape(z.shape[0], -1), axis=-1)
  grad_norm = w * jnp.linalg.norm(residual, axis=-1)
  return jnp.mean(per_view), dict(t=t, grad_norm=grad_norm)

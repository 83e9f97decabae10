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


def perpendicular_component(x, y):
  """The part of x perpendicular to y, per sample: x - (<x, y> / |y|^2) y.

  Args: x, y (B, ...). Returns (B, ...); where y = 0 it is x.
  """
  flat_x, flat_y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
  dot, norm2 = jnp.sum(flat_x * flat_y, axis=-1), jnp.sum(flat_y * flat_y, axis=-1)
  coef = jnp.where(norm2 > 0, dot / jnp.where(norm2 > 0, norm2, 1.0), 0.0)
  return x - _expand(coef, y) * y


def perp_neg_guidance(eps_uncond, eps_cond, eps_negs, neg_weights, omega):
  """Perp-Neg (Armandpour et al. 2023, "Re-imagine the Negative Prompt Algorithm",
  arXiv:2304.04968), in the form threestudio uses for SDS (threestudio/models/guidance/
  stable_diffusion_guidance.py with utils/ops.perpendicular_component):

    eps_hat = eps_u + (1 + omega) [ d - sum_k w_k perp(eps_k - eps_u, d) ],  d = eps_c - eps_u.

  Each negative direction is projected perpendicular to the positive one before it is
  subtracted, so a negative removes what it names without cancelling the prompt itself. The
  negatives share the guidance scale, as in threestudio (its guidance_scale is our 1 + omega and
  its weights are our -w_k). With every w_k = 0 this is classifier_free_guidance's
  (1 + omega) eps_c - omega eps_u.

  Args:
    eps_uncond, eps_cond: (B, ...).
    eps_negs: (B, K, ...) eps under each view's K negative prompts.
    neg_weights: (B, K) w_k >= 0.
  Returns: eps_hat (B, ...).
  """
  d = eps_cond - eps_uncond
  subtracted = jnp.zeros_like(d)
  for k in range(eps_negs.shape[1]):
    perp = perpendicular_component(eps_negs[:, k] - eps_uncond, d)
    subtracted = subtracted + _expand(neg_weights[:, k], d) * perp
  return eps_uncond + (1.0 + omega) * (d - subtracted)


def guided_eps(guidance, gparams, z_t, t, cond_emb, uncond_emb, omega, neg_emb=None,
               neg_weights=None):
  """CFG noise prediction from ONE eps call on the stacked [uncond, cond(, negatives)] batch.

  Args: z_t (B, ...); t (B,); cond_emb, uncond_emb (B, ...); optionally neg_emb (B, K, ...) and
  neg_weights (B, K) for Perp-Neg (perp_neg_guidance). Returns eps_hat (B, ...).
  """
  z_t, t = jax.lax.stop_gradient((z_t, t))
  if neg_emb is None:
    both = guidance.eps(gparams, jnp.concatenate([z_t, z_t]), jnp.concatenate([t, t]),
                        jnp.concatenate([uncond_emb, cond_emb]))
    eps_uncond, eps_cond = jnp.split(both, 2)
    return classifier_free_guidance(eps_uncond, eps_cond, omega)
  batch, k = neg_emb.shape[:2]
  neg_flat = neg_emb.reshape((batch * k,) + neg_emb.shape[2:])  # view-major: (b0 k0, b0 k1, ...)
  out = guidance.eps(gparams, jnp.concatenate([z_t, z_t, jnp.repeat(z_t, k, axis=0)]),
                     jnp.concatenate([t, t, jnp.repeat(t, k, axis=0)]),
                     jnp.concatenate([uncond_emb, cond_emb, neg_flat]))
  eps_uncond, eps_cond, eps_negs = out[:batch], out[batch:2 * batch], out[2 * batch:]
  eps_negs = eps_negs.reshape((batch, k) + eps_negs.shape[1:])
  return perp_neg_guidance(eps_uncond, eps_cond, eps_negs, neg_weights, omega)


def draw_noise(schedule, keys, z_shape, t_range):
  """t and eps of each view from its own key, so a view draws the same on any device layout.

  Args: keys (B,) one PRNG key per view; z_shape (B, ...). Returns t (B,), eps (B, ...).
  """
  def one(key):
    key_t, key_eps = jax.random.split(key)
    return (schedule.sample_t(key_t, (), t_range),
            jax.random.normal(key_eps, tuple(z_shape[1:]), jnp.float32))
  return jax.vmap(one)(keys)


def sds_loss(guidance, gparams, x, cond_emb, uncond_emb, keys, *, omega: float, weighting: str,
             t_range: Tuple[float, float], neg_emb=None,
             neg_weights=None) -> Tuple[jnp.ndarray, Dict[str, jnp.ndarray]]:
  """The SDS surrogate of a batch of renders, averaged over the batch.

  Its gradient w.r.t. the render is exactly w(t) (eps_hat - eps)^T dz/dx per view [P Eq. 3].

  Args:
    guidance: a backend (guidance/__init__.py); gparams its frozen params.
    x: (B, H, W, 3) renders in [0, 1].
    cond_emb, uncond_emb: (B, ...) per-view conditional and unconditional embeddings.
    keys: (B,) PRNG keys, one per view, for its t and eps (draw_noise).
    neg_emb, neg_weights: (B, K, ...), (B, K) Perp-Neg negatives (guided_eps), or None.

  Returns:
    loss: () mean over views of w(t) sum(stop_gradient(eps_hat - eps) * z).
    aux: t (B,) and grad_norm (B,) = |w(t) (eps_hat - eps)|, the SDS gradient on z.
  """
  z = guidance.encode(gparams, x)
  t, eps = draw_noise(guidance.schedule, keys, z.shape, t_range)
  alpha, sigma = guidance.schedule.alpha_sigma(t)
  eps = eps.astype(z.dtype)
  z_t = _expand(alpha, z) * z + _expand(sigma, z) * eps
  eps_hat = guided_eps(guidance, gparams, z_t, t, cond_emb, uncond_emb, omega, neg_emb,
                       neg_weights)
  w = sds_weight(alpha, sigma, weighting)
  residual = jax.lax.stop_gradient(eps_hat - eps).reshape(z.shape[0], -1)
  per_view = w * jnp.sum(residual * z.reshape(z.shape[0], -1), axis=-1)
  grad_norm = w * jnp.linalg.norm(residual, axis=-1)
  return jnp.mean(per_view), dict(t=t, grad_norm=grad_norm)

"""Guidance backends: the frozen diffusion prior that scores renders (design.md §3).

Every backend has the same interface, so the update step never knows which prior it runs:

  backend.schedule                  a noise schedule (guidance/schedule.py), a pytree
  backend.params                    frozen weights, passed into the compiled update as arrays
  backend.embed(prompts)            (P, ...) one embedding per prompt string; Python, before the loop
  backend.encode(params, x)         (B, H, W, 3) renders in [0, 1] -> (B, ...) z; differentiable
                                    (identity for pixel-space priors, the VAE encoder for SD)
  backend.eps(params, z_t, t, emb)  (B, ...) noise prediction for a batch of (z_t, t, embedding);
                                    only ever called on stop_gradient inputs

Which backend a config names, and building it, is dreamfusion_jax/backends.py's business.
Classifier-free guidance is not the backend's business either: sds.py stacks the unconditional and
conditional embeddings into one eps call and combines them in the paper's convention.
"""
from typing import Any, Protocol, Sequence

import jax.numpy as jnp


class Guidance(Protocol):
  schedule: Any
  params: Any

  def embed(self, prompts: Sequence[str]) -> jnp.ndarray:
    ...

  def encode(self, params, x: jnp.ndarray) -> jnp.ndarray:
    ...

  def eps(self, params, z_t: jnp.ndarray, t: jnp.ndarray, emb: jnp.ndarray) -> jnp.ndarray:
    ...

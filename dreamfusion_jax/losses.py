"""Regularizers (paper §3.1, A.2; paper.md §6).

Reduction: each term is summed over the rays of a view, as the SDS term is summed over the pixels
of a view (Fig. 8), and the caller averages over views; the balance between SDS and the
regularizers then does not change with the render resolution.
"""
import jax.numpy as jnp


def orientation_loss(orientation_per_ray):
  """Ref-NeRF-style orientation loss of one view [P §3.1].

  Args: orientation_per_ray (..., R): sum_i stopgrad(w_i) max(0, n_i . v)^2 per ray (render.py
    computes it with the stop-gradient on the weights, without which the object shrinks).
  Returns: (...,) summed over rays.
  """
  return jnp.sum(orientation_per_ray, axis=-1)


def opacity_loss(acc, eps: float = 0.01):
  """sum over rays of sqrt(A^2 + eps) [P A.2]: discourages density in empty space.

  Args: acc (..., R) accumulated alpha. Returns (...,).
  """
  return jnp.sum(jnp.sqrt(acc ** 2 + eps), axis=-1)

"""The empirical prior: the exact denoiser of a finite captioned image set (design.md §5).

A set of N images x_i (H, W, 3) in [0, 1], each with a caption c(i) from a vocabulary of C distinct
strings, defines a mixture prior p(x) = sum_i pi_i delta(x - x_i). Under the forward process
z_t = alpha x + sigma eps its ideal denoiser needs no training:

  p(i | z_t)  ∝ pi_i exp(-|z_t - alpha x_i|^2 / (2 sigma^2)),
  E[x | z_t]  = sum_i p(i | z_t) x_i,
  eps_hat     = (z_t - alpha E[x | z_t]) / sigma      (= E[eps | z_t], exactly).

Embeddings. An embedding is a row of non-negative weights w over the C captions, shape (C,). Image
i gets prior weight pi_i = w_{c(i)} / N_{c(i)}: a caption's weight is spread uniformly over its
N_c images, and images of zero-weight captions are excluded (log-weight -inf). A blend
sum_k a_k w_k of embeddings (prompts.py's 'interpolated' view mode, train.py's weights @ table)
is then the mixture sum_k a_k p(x | w_k) of the caption-conditioned priors, as it should be.

Caption format and embed(). Captions are assumed to read "<object>, <view> view", e.g.
"toy hamburger, front view" (prompts.view_prompts's format); the object of such a caption is
everything before its LAST ", ". embed maps a prompt string, in this order of precedence, to:
  - an object name (exactly the part before ", " of some "<object>, <view> view" captions)
                                     -> weights ∝ N_c over that object's captions, its view
                                        captions and the bare caption "<object>" if images have
                                        it (a dropped view word, toy.caption_noise): uniform
                                        over all that object's images (view_mode='none');
  - an exact caption                 -> one-hot on that caption;
  - '' (the unconditional prompt)    -> weights ∝ N_c over ALL captions (uniform over all images);
  - anything else                    -> ValueError listing some captions and objects.
Matching is exact, never by substring: "hamburger" does not select "toy hamburger, front view".
Captions in another format are allowed; they can only be selected exactly (and by '').

Vocabulary order: sorted (Python string order) over the distinct captions, so the same image set
gives the same embeddings whatever order its images come in.

Numerics. All in log space: logits -> softmax over images. With the images centred on their mean
m (x'_i = x_i - m, z' = z_t - alpha m), |z' - alpha x'_i|^2 = |z'|^2 - 2 alpha z'.x'_i +
alpha^2 |x'_i|^2, and |z'|^2 is the same for every i, so it cancels in the softmax: one
(B, D) x (D, N) matmul at HIGHEST precision with |x'_i|^2 precomputed. (Centring only removes the
large common part of the dot products; it changes nothing mathematically.) sigma is floored at
SIGMA_MIN, so t = 0 gives a finite (one-hot) posterior instead of 0 / 0.
"""
from typing import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from dreamfusion_jax.guidance.schedule import CosineSchedule

SIGMA_MIN = 1e-4  # Floor on sigma_t in the logits and in eps = (z - alpha E[x]) / sigma.
_VIEW_SUFFIX = ' view'
_SEPARATOR = ', '
_LIST_MAX = 8  # How many captions/objects an error message lists.


def caption_object(caption: str):
  """The object of a "<object>, <view> view" caption (the part before the last ", "), else None."""
  if _SEPARATOR not in caption:
    return None
  head, tail = caption.rsplit(_SEPARATOR, 1)
  if not head or not tail.endswith(_VIEW_SUFFIX) or len(tail) == len(_VIEW_SUFFIX):
    return None
  return head


@flax.struct.dataclass
class EmpiricalPriorParams:
  """Arrays only: replicated onto devices and passed into the compiled update."""
  images: jnp.ndarray  # (N, D) float32 images flattened and CENTRED: x_i - mean.
  mean: jnp.ndarray  # (D,) float32 mean image of the set (flattened).
  sq_norms: jnp.ndarray  # (N,) float32 |x_i - mean|^2.
  caption_ids: jnp.ndarray  # (N,) int32 index of c(i) in the vocabulary.
  counts: jnp.ndarray  # (C,) float32 N_c, images per caption (all >= 1).


class EmpiricalPrior:
  """The guidance interface (see guidance/__init__.py) for a finite captioned image set."""

  def __init__(self, images, captions: Sequence[str]):
    """Args: images (N, H, W, 3) floats in [0, 1]; captions (N,) strings, one per image."""
    images = np.asarray(images, np.float64)
    captions = list(captions)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f'images must be (N, H, W, 3), got shape {images.shape}')
    if images.shape[0] == 0:
      raise ValueError('the empirical prior needs at least one image')
    if len(captions) != images.shape[0]:
      raise ValueError(f'{images.shape[0]} images but {len(captions)} captions')
    bad = [c for c in captions if not isinstance(c, str) or not c]
    if bad:
      raise ValueError(f'captions must be non-empty strings; got {bad[:_LIST_MAX]!r}')
    if not np.all(np.isfinite(images)):
      raise ValueError('images contain non-finite values')

    self.vocabulary = sorted(set(captions))
    index = {c: k for k, c in enumerate(self.vocabulary)}
    caption_ids = np.array([index[c] for c in captions], np.int32)
    counts = np.bincount(caption_ids, minlength=len(self.vocabulary)).astype(np.float64)
    self.counts = counts  # (C,) numpy, for embed.
    self.image_shape = tuple(images.shape[1:])  # (H, W, 3), checked by encode/eps.
    # Object name -> caption ids of its "<object>, <view> view" captions.
    self.objects = {}
    for k, c in enumerate(self.vocabulary):
      obj = caption_object(c)
      if obj is not None:
        self.objects.setdefault(obj, []).append(k)
    for k, c in enumerate(self.vocabulary):  # Bare "<object>" captions belong to their object.
      if c in self.objects:
        self.objects[c].append(k)

    flat = images.reshape(images.shape[0], -1)
    mean = flat.mean(axis=0)
    centred = (flat - mean).astype(np.float32)
    sq_norms = np.sum(centred.astype(np.float64) ** 2, axis=-1)
    self.params = EmpiricalPriorParams(
        images=jnp.asarray(centred),
        mean=jnp.asarray(mean, jnp.float32),
        sq_norms=jnp.asarray(sq_norms, jnp.float32),
        caption_ids=jnp.asarray(caption_ids),
        counts=jnp.asarray(counts, jnp.float32))
    self.schedule = CosineSchedule()

  # ----------------------------------------------------------------------------------- embed
  def _embed_one(self, prompt: str) -> np.ndarray:
    weights = np.zeros(len(self.vocabulary))
    if prompt in self.objects:
      ids = self.objects[prompt]
      weights[ids] = self.counts[ids]
    elif prompt in self.vocabulary:
      weights[self.vocabulary.index(prompt)] = 1.0
    elif prompt == '':
      weights = self.counts.copy()
    else:
      objects = sorted(self.objects)
      raise ValueError(
          f'prompt {prompt!r} is neither a caption of this empirical prior, nor an object name '
          f'(the exact part before ", " of "<object>, <view> view" captions), nor \'\'. '
          f'{len(self.vocabulary)} captions, e.g. {self.vocabulary[:_LIST_MAX]}; '
          f'{len(objects)} objects, e.g. {objects[:_LIST_MAX]}')
    total = weights.sum()
    if not total > 0:  # Cannot happen (every caption has >= 1 image), but never hand out zeros.
      raise ValueError(f'prompt {prompt!r} selects no images')
    return weights / total

  def embed(self, prompts: Sequence[str]) -> jnp.ndarray:
    """(P,) strings -> (P, C) float32 rows of caption weights, each summing to 1 (see module doc)."""
    if isinstance(prompts, str):
      raise TypeError('embed takes a sequence of prompts, not one string')
    return jnp.asarray(np.stack([self._embed_one(p) for p in prompts]), jnp.float32)

  # ------------------------------------------------------------------------------ the prior
  def _check_shape(self, x):
    if tuple(x.shape[1:]) != self.image_shape:
      raise ValueError(
          f'the empirical prior\'s images are {self.image_shape} (H, W, 3) but got renders of '
          f'shape {tuple(x.shape[1:])}: set config.render.resolution to the images\' resolution '
          f'({self.image_shape[0]}) or rebuild the image set at the render resolution')

  def encode(self, params, x):
    """Pixel space: z = x. (B, H, W, 3) -> (B, H, W, 3); H, W must be the images' resolution."""
    del params
    self._check_shape(x)
    return x

  def image_log_weights(self, params, emb):
    """(B, C) caption weights -> (B, N) log pi_i = log w_{c(i)} - log N_{c(i)} (unnormalised).

    Non-positive weights give -inf (the image is excluded). A row with no positive weight gives
    an all -inf row (NaN posterior): embed never produces one.
    """
    emb = jnp.asarray(emb, jnp.float32)
    positive = emb > 0
    log_w = jnp.where(positive, jnp.log(jnp.where(positive, emb, 1.0)), -jnp.inf)
    log_caption = log_w - jnp.log(params.counts)[None, :]  # (B, C)
    return jnp.take(log_caption, params.caption_ids, axis=1)  # (B, N)

  def _alpha_sigma(self, t):
    alpha, sigma = self.schedule.alpha_sigma(jnp.asarray(t, jnp.float32))
    return alpha, jnp.maximum(sigma, SIGMA_MIN)

  def posterior(self, params, z_t, t, emb):
    """p(i | z_t) under the embedding's prior. z_t (B, H, W, 3), t (B,), emb (B, C) -> (B, N)."""
    self._check_shape(z_t)
    alpha, sigma = self._alpha_sigma(t)
    z = z_t.reshape(z_t.shape[0], -1).astype(jnp.float32)
    z_centred = z - alpha[:, None] * params.mean[None, :]
    dots = jnp.einsum('bd,nd->bn', z_centred, params.images,
                      precision=jax.lax.Precision.HIGHEST)  # (B, N)
    # -|z' - a x'_i|^2 / (2 s^2) up to the i-independent -|z'|^2 / (2 s^2).
    logits = (2.0 * alpha[:, None] * dots - (alpha ** 2)[:, None] * params.sq_norms[None, :]) / (
        2.0 * (sigma ** 2)[:, None])
    logits = logits + self.image_log_weights(params, emb)
    return jax.nn.softmax(logits, axis=-1)

  def denoise(self, params, z_t, t, emb):
    """E[x | z_t]. z_t (B, H, W, 3), t (B,), emb (B, C) -> (B, H, W, 3)."""
    probs = self.posterior(params, z_t, t, emb)
    x_hat = params.mean[None, :] + jnp.matmul(probs, params.images,
                                              precision=jax.lax.Precision.HIGHEST)
    return x_hat.reshape(z_t.shape).astype(z_t.dtype)

  def eps(self, params, z_t, t, emb):
    """Exact E[eps | z_t] = (z_t - alpha E[x | z_t]) / sigma. z_t (B, H, W, 3), t (B,), emb (B, C)."""
    alpha, sigma = self._alpha_sigma(t)
    x_hat = self.denoise(params, z_t, t, emb)
    expand = lambda v: v.reshape(v.shape + (1,) * (z_t.ndim - 1))
    return ((z_t - expand(alpha) * x_hat) / expand(sigma)).astype(z_t.dtype)

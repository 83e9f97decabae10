"""The empirical prior (dreamfusion_jax/toy/empirical.py): exactness against float64 brute force,
its limits, conditioning, a Monte Carlo check that eps_hat = E[eps | z_t], embed, and SDS convergence."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax import prompts
from dreamfusion_jax import sds
from dreamfusion_jax.toy.empirical import EmpiricalPrior

# 20 images, 4x4: two "<object>, <view> view" objects with unequal counts, and one caption in no
# such format.
CAPTIONS = (['toy hamburger, front view'] * 3 + ['toy hamburger, side view'] * 5 +
            ['toy hamburger, back view'] * 2 + ['toy hamburger, overhead view'] * 1 +
            ['red ball, front view'] * 4 + ['red ball, back view'] * 2 + ['plain thing'] * 3)


def _toy_prior(seed=0, res=4):
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(CAPTIONS))  # the vocabulary must not depend on image order
  captions = [CAPTIONS[i] for i in order]
  images = rng.uniform(size=(len(captions), res, res, 3))
  return EmpiricalPrior(images, captions), images, captions


def _brute_force(images, captions, vocabulary, z, t, emb):
  """float64 p(i | z_t), E[x | z_t], eps_hat straight from the definition (no expansion)."""
  images = np.asarray(images, np.float64).reshape(len(captions), -1)
  z = np.asarray(z, np.float64).reshape(z.shape[0], -1)
  t = np.asarray(t, np.float64)
  emb = np.asarray(emb, np.float64)
  ids = np.array([vocabulary.index(c) for c in captions])
  counts = np.bincount(ids, minlength=len(vocabulary))
  alpha, sigma = np.cos(0.5 * np.pi * t), np.sin(0.5 * np.pi * t)
  d2 = np.sum((z[:, None, :] - alpha[:, None, None] * images[None]) ** 2, axis=-1)  # (B, N)
  pi = emb[:, ids] / counts[ids][None, :]
  with np.errstate(divide='ignore'):
    logits = -d2 / (2 * sigma[:, None] ** 2) + np.log(pi)
  logits -= logits.max(axis=-1, keepdims=True)
  p = np.exp(logits)
  p /= p.sum(axis=-1, keepdims=True)
  x_hat = p @ images
  eps = (z - alpha[:, None] * x_hat) / sigma[:, None]
  return p, x_hat, eps


def _embeddings(prior):
  """(8, C): a caption, an object, '', the negative prompt, and blends (interpolated views)."""
  rows = prior.embed(['toy hamburger, side view', 'red ball', '', 'toy hamburger',
                      'plain thing', 'toy hamburger, front view', 'red ball, back view'])
  blend = 0.3 * rows[5] + 0.7 * rows[0]  # front/side blend of one object
  cross = 0.5 * rows[1] + 0.25 * rows[2] + 0.25 * rows[6]  # an odd mixture of everything
  return jnp.concatenate([rows, blend[None], cross[None]])


# ------------------------------------------------------------------------------ exactness
def test_matches_float64_brute_force():
  prior, images, captions = _toy_prior()
  emb = _embeddings(prior)
  b = emb.shape[0]
  rng = np.random.default_rng(1)
  for t_value in (0.15, 0.3, 0.5, 0.7, 0.9):
    t = np.full((b,), t_value, np.float32)
    alpha, sigma = np.cos(0.5 * np.pi * t), np.sin(0.5 * np.pi * t)
    # z_t from the forward process around random images, so the posteriors are non-trivial.
    x0 = images[rng.integers(0, len(captions), b)]
    z = (alpha[:, None, None, None] * x0 +
         sigma[:, None, None, None] * rng.normal(size=x0.shape)).astype(np.float32)
    p_ref, x_ref, eps_ref = _brute_force(images, captions, prior.vocabulary, z, t, emb)
    p = prior.posterior(prior.params, jnp.asarray(z), jnp.asarray(t), emb)
    x_hat = prior.denoise(prior.params, jnp.asarray(z), jnp.asarray(t), emb)
    eps = prior.eps(prior.params, jnp.asarray(z), jnp.asarray(t), emb)
    # The posterior must be non-trivial somewhere, or this test would check little.
    assert np.max(np.minimum(p_ref, 1 - p_ref)) > 1e-3 or t_value < 0.2
    np.testing.assert_allclose(p, p_ref, atol=1e-5, err_msg=f't={t_value}')
    np.testing.assert_allclose(np.asarray(x_hat).reshape(b, -1), x_ref, atol=1e-5,
                               err_msg=f't={t_value}')
    np.testing.assert_allclose(np.asarray(eps).reshape(b, -1), eps_ref,
                               atol=1e-5 / np.sin(0.5 * np.pi * t_value) + 1e-5,
                               err_msg=f't={t_value}')


def test_per_sample_t_and_jit_batch():
  prior, images, captions = _toy_prior(seed=3)
  emb = _embeddings(prior)
  b = emb.shape[0]
  rng = np.random.default_rng(2)
  t = rng.uniform(0.1, 0.95, b).astype(np.float32)
  z = rng.normal(size=(b, 4, 4, 3)).astype(np.float32)
  eps = jax.jit(prior.eps)(prior.params, jnp.asarray(z), jnp.asarray(t), emb)
  assert eps.shape == z.shape and eps.dtype == jnp.float32
  _, _, eps_ref = _brute_force(images, captions, prior.vocabulary, z, t, emb)
  np.testing.assert_allclose(np.asarray(eps).reshape(b, -1), eps_ref, atol=1e-4, rtol=1e-5)


# ------------------------------------------------------------------------------ limits
def test_small_noise_limit_recovers_the_image():
  prior, images, captions = _toy_prior()
  emb = prior.embed([''] * 4 + [captions[j] for j in (0, 5, 11, 17)])
  js = np.array([0, 5, 11, 17] * 2)
  for t_value in (1e-3, 0.0):
    t = jnp.full((8,), t_value)
    alpha = float(np.cos(0.5 * np.pi * t_value))
    z = jnp.asarray(alpha * images[js], jnp.float32)
    x_hat = prior.denoise(prior.params, z, t, emb)
    eps = prior.eps(prior.params, z, t, emb)
    np.testing.assert_allclose(x_hat, images[js], atol=1e-5)
    assert np.all(np.isfinite(eps)) and np.max(np.abs(eps)) < 1e-2, np.max(np.abs(eps))


def test_large_noise_limit_is_the_prior_weighted_mean():
  prior, images, captions = _toy_prior()
  emb = _embeddings(prior)
  b = emb.shape[0]
  captions = np.array(captions)
  ids = np.array([prior.vocabulary.index(c) for c in captions])
  counts = np.bincount(ids)
  pi = np.asarray(emb)[:, ids] / counts[ids]
  pi /= pi.sum(axis=-1, keepdims=True)
  expected = pi @ images.reshape(len(captions), -1)  # (B, D)
  # The caption weights spread as w_c / N_c: e.g. '' is the plain mean of all images.
  np.testing.assert_allclose(expected[2], images.reshape(len(captions), -1).mean(0), atol=1e-6)
  t = jnp.full((b,), 0.98)
  # Noise-free z: the posterior barely moves from the prior.
  x_hat = prior.denoise(prior.params, jnp.zeros((b, 4, 4, 3)), t, emb)
  np.testing.assert_allclose(np.asarray(x_hat).reshape(b, -1), expected, atol=5e-3)
  # A typical z_t at t = 0.98 (pure-ish noise): still close to the prior mean.
  z = jax.random.normal(jax.random.PRNGKey(0), (b, 4, 4, 3))
  x_hat = prior.denoise(prior.params, z, t, emb)
  np.testing.assert_allclose(np.asarray(x_hat).reshape(b, -1), expected, atol=0.05)


def test_log_space_is_stable_far_from_all_images():
  prior, _, _ = _toy_prior()
  emb = _embeddings(prior)
  b = emb.shape[0]
  for t_value in (0.0, 0.02, 0.98, 1.0):
    for scale in (-1e3, 50.0, 1e4):
      z = jnp.full((b, 4, 4, 3), scale) + jax.random.normal(jax.random.PRNGKey(1), (b, 4, 4, 3))
      t = jnp.full((b,), t_value)
      p = prior.posterior(prior.params, z, t, emb)
      eps = prior.eps(prior.params, z, t, emb)
      assert np.all(np.isfinite(p)) and np.all(np.isfinite(eps)), (t_value, scale)
      np.testing.assert_allclose(np.sum(p, axis=-1), 1.0, atol=1e-5)
      # Excluded images (zero caption weight) get exactly zero posterior.
      excluded = np.asarray(prior.image_log_weights(prior.params, emb)) == -np.inf
      assert np.all(np.asarray(p)[excluded] == 0.0)


# ------------------------------------------------------------------------------ conditioning
RED, BLUE, GREY = np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0.5, 0.5, 0.5])


def test_conditional_restricts_to_its_caption():
  rng = np.random.default_rng(0)
  res = 4
  # Noisy reds for the front, noisy blues for the back.
  reds = np.clip(RED + 0.05 * rng.normal(size=(3, res, res, 3)), 0, 1)
  blues = np.clip(BLUE + 0.05 * rng.normal(size=(5, res, res, 3)), 0, 1)
  prior = EmpiricalPrior(np.concatenate([reds, blues]),
                         ['ball, front view'] * 3 + ['ball, back view'] * 5)
  emb = prior.embed(['ball, front view', 'ball, back view', ''])
  t = jnp.full((3,), 0.5)
  alpha = float(np.cos(0.25 * np.pi))
  sigma = float(np.sin(0.25 * np.pi))
  grey = jnp.broadcast_to(jnp.asarray(GREY, jnp.float32), (3, res, res, 3))
  z = alpha * grey + sigma * jax.random.normal(jax.random.PRNGKey(0), (3, res, res, 3))
  x_hat = np.asarray(prior.denoise(prior.params, z, t, emb))
  np.testing.assert_allclose(x_hat[0], np.broadcast_to(RED, x_hat[0].shape), atol=0.1)
  np.testing.assert_allclose(x_hat[1], np.broadcast_to(BLUE, x_hat[1].shape), atol=0.1)
  # eps for the front view points from red to z: the SDS step -eps moves grey towards red.
  eps = np.asarray(prior.eps(prior.params, alpha * grey, t, emb))
  assert np.sum(eps[0] * (RED - GREY)) < 0 and np.sum(eps[0] * (BLUE - GREY)) > 0
  assert np.sum(eps[1] * (BLUE - GREY)) < 0 and np.sum(eps[1] * (RED - GREY)) > 0

  # With exactly constant images grey is equidistant from red and blue, so the unconditional
  # denoiser of the noise-free grey is the count-weighted mixture (3 red : 5 blue).
  const = np.concatenate([np.broadcast_to(RED, (3, res, res, 3)),
                          np.broadcast_to(BLUE, (5, res, res, 3))])
  prior = EmpiricalPrior(const, ['ball, front view'] * 3 + ['ball, back view'] * 5)
  emb = prior.embed(['ball, front view', ''])
  x_hat = np.asarray(prior.denoise(prior.params, alpha * grey[:2], t[:2], emb))
  np.testing.assert_allclose(x_hat[0], np.broadcast_to(RED, x_hat[0].shape), atol=1e-6)
  np.testing.assert_allclose(x_hat[1], np.broadcast_to((3 * RED + 5 * BLUE) / 8, x_hat[1].shape),
                             atol=1e-5)


# ------------------------------------------------------------------------------ Tweedie / MMSE
def test_eps_hat_is_the_conditional_mean_monte_carlo():
  """eps_hat(z_t) = E[eps | z_t] iff eps - eps_hat is orthogonal to every function of (z_t, t).

  Draw x ~ the embedding's prior, t, eps; check E[(eps - eps_hat) . g] = 0 for g = eps_hat (the
  MMSE identity E[eps . eps_hat] = E[|eps_hat|^2]) and g = z_t, within 4 standard errors. The same
  check with the wrong prior's eps_hat must fail (so the test has power).
  """
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(5, 1, 1, 3))
  captions = ['obj, front view'] * 2 + ['obj, back view'] * 3
  prior = EmpiricalPrior(images, captions)
  emb_row = 0.8 * prior.embed(['obj, front view'])[0] + 0.2 * prior.embed(['obj, back view'])[0]
  ids = np.array([prior.vocabulary.index(c) for c in captions])
  pi = np.asarray(emb_row)[ids] / np.bincount(ids)[ids]
  pi /= pi.sum()

  m = 100_000
  x0 = images[rng.choice(5, size=m, p=pi)]
  t = rng.uniform(0.05, 0.95, m).astype(np.float32)
  alpha, sigma = np.cos(0.5 * np.pi * t), np.sin(0.5 * np.pi * t)
  noise = rng.normal(size=x0.shape)
  z = (alpha[:, None, None, None] * x0 + sigma[:, None, None, None] * noise).astype(np.float32)
  eps_fn = jax.jit(prior.eps)

  def orthogonality(emb_row):
    emb = jnp.broadcast_to(emb_row, (m, emb_row.shape[0]))
    eps_hat = np.asarray(eps_fn(prior.params, jnp.asarray(z), jnp.asarray(t), emb),
                         np.float64).reshape(m, -1)
    resid = noise.reshape(m, -1) - eps_hat
    worst = 0.0
    for g in (eps_hat, z.reshape(m, -1)):
      terms = np.sum(resid * g, axis=-1)
      worst = max(worst, abs(terms.mean()) / (terms.std() / np.sqrt(m)))
    return worst

  assert orthogonality(emb_row) < 4.0
  wrong = prior.embed(['obj, back view'])[0]  # the back caption's prior, not the sampled mixture
  assert orthogonality(wrong) > 8.0


# ------------------------------------------------------------------------------ embed
def test_embed_rules():
  prior, _, captions = _toy_prior()
  vocab = prior.vocabulary
  assert vocab == sorted(set(CAPTIONS))
  counts = np.array([CAPTIONS.count(c) for c in vocab], np.float64)
  rows = np.asarray(prior.embed(['red ball, back view', 'toy hamburger', '', 'plain thing']))
  assert rows.shape == (4, len(vocab)) and rows.dtype == np.float32
  np.testing.assert_allclose(rows.sum(-1), 1.0, atol=1e-6)
  np.testing.assert_array_equal(rows[0], np.eye(len(vocab))[vocab.index('red ball, back view')])
  burger = np.array([c.startswith('toy hamburger, ') for c in vocab])
  np.testing.assert_allclose(rows[1], np.where(burger, counts, 0) / counts[burger].sum(),
                             atol=1e-7)
  np.testing.assert_allclose(rows[2], counts / counts.sum(), atol=1e-7)
  np.testing.assert_array_equal(rows[3], np.eye(len(vocab))[vocab.index('plain thing')])
  # The project's prompt table and negative prompt embed as train.make_frozen asks.
  table = np.asarray(prior.embed(prompts.view_prompts('toy hamburger')))
  np.testing.assert_allclose(table[0], rows[1], atol=1e-7)
  assert [vocab[k] for k in table[1:].argmax(-1)] == prompts.view_prompts('toy hamburger')[1:]


@pytest.mark.parametrize('prompt', ['hamburger', 'toy', 'toy hamburger, front', 'red ball,',
                                    'blue cube', 'plain', 'toy hamburger, front view '])
def test_embed_rejects_unknown_prompts_and_lists_the_vocabulary(prompt):
  prior, _, _ = _toy_prior()
  with pytest.raises(ValueError) as info:
    prior.embed([prompt])
  message = str(info.value)
  assert repr(prompt) in message and 'red ball, back view' in message and "'toy hamburger'" in message


def test_vocabulary_is_independent_of_image_order():
  p1, _, _ = _toy_prior(seed=0)
  p2, _, _ = _toy_prior(seed=5)
  assert p1.vocabulary == p2.vocabulary
  np.testing.assert_array_equal(p1.embed(['red ball', '']), p2.embed(['red ball', '']))


def test_resolution_mismatch_is_a_clear_error():
  prior, _, _ = _toy_prior()
  with pytest.raises(ValueError, match='render.resolution'):
    jax.jit(prior.encode)(prior.params, jnp.zeros((2, 8, 8, 3)))
  x = jnp.zeros((2, 4, 4, 3))
  assert prior.encode(prior.params, x) is x
  with pytest.raises(ValueError):
    EmpiricalPrior(np.zeros((3, 4, 4, 3)), ['a, front view'] * 2)


# ------------------------------------------------------------------------------ SDS
def test_sds_gradient_descent_converges_to_the_captioned_image():
  res = 6
  rng = np.random.default_rng(0)
  target = rng.uniform(0.1, 0.9, size=(res, res, 3))
  others = rng.uniform(size=(6, res, res, 3))
  images = np.concatenate([np.broadcast_to(target, (4, res, res, 3)), others])
  captions = ['dot, front view'] * 4 + ['dot, back view'] * 3 + ['cube, side view'] * 3
  prior = EmpiricalPrior(images, captions)
  cond, uncond = prior.embed(['dot, front view']), prior.embed([''])
  lr = 0.2

  def step(x, key):
    grad = jax.grad(lambda x: sds.sds_loss(prior, prior.params, x, cond, uncond, key[None],
                                           omega=0.0, weighting='sigma2',
                                           t_range=(0.02, 0.98))[0])(x)
    return x - lr * grad, None

  x0 = jnp.full((1, res, res, 3), 0.5)
  keys = jax.random.split(jax.random.PRNGKey(0), 200)
  x, _ = jax.jit(lambda x0: jax.lax.scan(step, x0, keys))(x0)
  assert np.max(np.abs(np.asarray(x0[0]) - target)) > 0.3  # it had somewhere to go
  np.testing.assert_allclose(x[0], target, atol=0.05)


def test_bare_object_captions_belong_to_their_object():
  """Images whose view word was dropped (toy.caption_noise) carry the bare caption "<object>":
  the object's prompt covers them with its view captions; a view caption stays one-hot."""
  images = np.random.default_rng(0).random((6, 2, 2, 3))
  captions = ['cup', 'cup', 'cup, front view', 'cup, back view', 'cup, back view', 'ball, front view']
  prior = EmpiricalPrior(images, captions)
  vocab = prior.vocabulary
  obj, front = np.asarray(prior.embed(['cup', 'cup, front view']))
  expected = np.array([{'cup': 2, 'cup, front view': 1, 'cup, back view': 2}.get(c, 0)
                       for c in vocab], np.float64) / 5
  np.testing.assert_allclose(obj, expected, atol=1e-7)
  np.testing.assert_array_equal(front, np.eye(len(vocab))[vocab.index('cup, front view')])
  # Every image of the cup has the same prior weight 1/5 under the object's prompt.
  log_w = np.asarray(prior.image_log_weights(prior.params, prior.embed(['cup'])))[0]
  np.testing.assert_allclose(np.exp(log_w[:5]), 1 / 5, rtol=1e-6)
  assert np.isneginf(log_w[5])

"""SDS: the CFG formula, the stop-gradient, and convergence to the closed-form CFG target."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax import sds
from dreamfusion_jax.guidance.gaussian import GaussianPrior
from dreamfusion_jax.guidance.schedule import CosineSchedule, DiscreteSchedule


def test_cfg_is_the_papers_formula():
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  eps_u, eps_c = jax.random.normal(k1, (2, 8)), jax.random.normal(k2, (2, 8))
  omega = 100.0
  expected = np.asarray(eps_c) * 101.0 - np.asarray(eps_u) * 100.0
  np.testing.assert_allclose(sds.classifier_free_guidance(eps_u, eps_c, omega), expected,
                             rtol=1e-5, atol=1e-4)
  # diffusers' eps_u + g (eps_c - eps_u) with g = omega + 1 is the same thing.
  np.testing.assert_allclose(eps_u + 101.0 * (eps_c - eps_u), expected, rtol=1e-5, atol=1e-4)


class NonlinearPrior:
  """A stand-in whose encode and eps are both nonlinear, so a missing stop_gradient would show."""

  def __init__(self):
    self.schedule = CosineSchedule()
    self.params = dict(a=jnp.float32(1.7), b=jnp.float32(-0.3))

  def encode(self, params, x):
    return jnp.tanh(2.0 * x - 1.0) * 1.5  # (B, H, W, 3) -> (B, H, W, 3)

  def eps(self, params, z_t, t, emb):
    shift = emb[:, None, None, :] + t[:, None, None, None]
    return jnp.tanh(params['a'] * z_t ** 2 + params['b'] * z_t + shift)


@pytest.mark.parametrize('weighting', ['sigma2', 'uniform'])
def test_sds_gradient_is_w_times_residual_through_dz_dtheta(weighting):
  guidance = NonlinearPrior()
  keys = jax.random.split(jax.random.PRNGKey(3), 2)  # One per view.
  theta = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 3))

  def render(theta):  # x = g(theta), nonlinear
    return jax.nn.sigmoid(theta * 1.3 + 0.2)

  cond = jnp.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
  uncond = jnp.zeros((2, 3))
  omega, t_range = 7.5, (0.02, 0.98)

  def loss(theta):
    value, _ = sds.sds_loss(guidance, guidance.params, render(theta), cond, uncond, keys,
                            omega=omega, weighting=weighting, t_range=t_range)
    return value

  grad = jax.grad(loss)(theta)

  # Explicit: draw the same t and eps, compute w (eps_hat - eps), pull back through z(x(theta)).
  z_fn = lambda th: guidance.encode(None, render(th))
  z, vjp = jax.vjp(z_fn, theta)
  # Each view's t and eps from its own key: split into a t key and an eps key.
  split = [jax.random.split(k) for k in keys]
  t = jnp.stack([guidance.schedule.sample_t(k_t, (), t_range) for k_t, _ in split])
  alpha, sigma = guidance.schedule.alpha_sigma(t)
  eps = jnp.stack([jax.random.normal(k_eps, z.shape[1:]) for _, k_eps in split])
  z_t = alpha[:, None, None, None] * z + sigma[:, None, None, None] * eps
  e_u = guidance.eps(guidance.params, z_t, t, uncond)
  e_c = guidance.eps(guidance.params, z_t, t, cond)
  eps_hat = (1 + omega) * e_c - omega * e_u
  w = sigma ** 2 if weighting == 'sigma2' else jnp.ones_like(sigma)
  explicit = vjp(w[:, None, None, None] * (eps_hat - eps) / 2.0)[0]  # mean over 2 views
  np.testing.assert_allclose(grad, explicit, rtol=1e-5, atol=1e-6)
  # A missing stop_gradient would add the eps Jacobian term: check that it is not negligible.
  def loss_without_sg(theta):
    z = z_fn(theta)
    z_t = alpha[:, None, None, None] * z + sigma[:, None, None, None] * eps
    e_hat = (1 + omega) * guidance.eps(guidance.params, z_t, t, cond) - omega * guidance.eps(
        guidance.params, z_t, t, uncond)
    return jnp.sum(w[:, None, None, None] * (e_hat - eps) ** 2) / 4.0
  assert np.max(np.abs(jax.grad(loss_without_sg)(theta) - explicit)) > 1e-2


@pytest.mark.parametrize('omega', [0.0, 5.0, 100.0])
def test_sds_converges_to_the_cfg_extrapolation(omega):
  """x = theta, Gaussian priors N(mu_c, s^2), N(mu_u, s^2): E[grad] = k(t) (x - x*) with
  x* = mu_c + omega (mu_c - mu_u), the CFG extrapolation that saturates DreamFusion's colours."""
  mu_c = jax.random.uniform(jax.random.PRNGKey(0), (4, 4, 3), minval=0.3, maxval=0.7)
  mu_u = mu_c + jax.random.uniform(jax.random.PRNGKey(1), (4, 4, 3), minval=-0.5, maxval=0.5) / (
      1.0 + omega)
  prior = GaussianPrior(['', 'a thing'], jnp.stack([mu_u, mu_c]), std=0.05)
  emb = prior.embed(['a thing', ''])
  batch = 32
  cond, uncond = jnp.tile(emb[:1], (batch, 1)), jnp.tile(emb[1:], (batch, 1))
  target = mu_c + omega * (mu_c - mu_u)

  def loss(theta, key):
    x = jnp.broadcast_to(theta, (batch,) + theta.shape)
    value, _ = sds.sds_loss(prior, prior.params, x, cond, uncond, jax.random.split(key, batch),
                            omega=omega, weighting='sigma2', t_range=(0.02, 0.98))
    return value

  @jax.jit
  def step(theta, key):
    return theta - 2.0 * jax.grad(loss)(theta, key)

  theta = jnp.full((4, 4, 3), 0.5)
  start_error = np.max(np.abs(theta - target))
  for i in range(300):
    theta = step(theta, jax.random.PRNGKey(100 + i))
  assert start_error > 0.05
  np.testing.assert_allclose(theta, target, atol=0.02 * max(1.0, start_error))


def test_discrete_schedule_samples_integer_timesteps_in_the_papers_range():
  betas = jnp.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2  # Stable Diffusion's
  schedule = DiscreteSchedule(alphas_cumprod=jnp.cumprod(1.0 - betas))
  t = schedule.sample_t(jax.random.PRNGKey(0), (20000,), (0.02, 0.98))
  assert t.dtype == jnp.int32 and int(t.min()) == 20 and int(t.max()) == 980
  alpha, sigma = schedule.alpha_sigma(t)
  np.testing.assert_allclose(alpha ** 2 + sigma ** 2, 1.0, rtol=1e-5)

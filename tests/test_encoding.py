"""IPE against Monte Carlo expectations of the sinusoids under the Gaussian."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax import encoding


@pytest.mark.parametrize('variance', [2e-3, 5e-2, 0.3])
def test_ipe_equals_monte_carlo(variance):
  num_freqs = 8
  means = jnp.array([[0.3, -0.7, 1.1], [0.0, 0.25, -1.3]])
  ipe = encoding.integrated_pos_enc(means, jnp.float32(variance), num_freqs)
  samples = means + np.sqrt(variance) * jax.random.normal(jax.random.PRNGKey(0),
                                                          (400_000,) + means.shape)
  scales = 2.0 ** np.arange(num_freqs)
  arg = (samples[..., None, :] * scales[:, None]).reshape(samples.shape[0], 2, -1)
  mc = np.concatenate([np.mean(np.sin(arg), 0), np.mean(np.cos(arg), 0)], axis=-1)
  np.testing.assert_allclose(ipe, mc, atol=1e-2)
  # The attenuation is real: at this variance the top frequency is damped far below 1.
  assert np.max(np.abs(ipe[:, 7 * 3:8 * 3])) < np.exp(-0.5 * 4 ** 7 * variance) + 1e-6


def test_ipe_with_zero_variance_is_plain_sinusoids():
  x = jnp.array([[0.1, 0.2, 0.3]])
  enc = encoding.pos_enc(x, 2)
  expected = np.concatenate([x[0], np.sin([0.1, 0.2, 0.3, 0.2, 0.4, 0.6]),
                             np.cos([0.1, 0.2, 0.3, 0.2, 0.4, 0.6])])
  np.testing.assert_allclose(enc[0], expected, rtol=1e-6)

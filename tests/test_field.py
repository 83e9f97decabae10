"""The NeRF MLP: density blob added before the activation, outputs in range, IPE reading."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax import field


def test_density_bias_is_added_before_the_activation():
  means = jax.random.normal(jax.random.PRNGKey(1), (50, 3)) * 0.4
  with_bias = field.NeRFMLP(num_blocks=2, width=16)
  without = field.NeRFMLP(num_blocks=2, width=16, density_bias_scale=0.0)
  params = with_bias.init(jax.random.PRNGKey(0), means, 0.05)
  raw_b, albedo_b = with_bias.apply(params, means, 0.05)
  raw_0, albedo_0 = without.apply(params, means, 0.05)
  blob = 5.0 * np.exp(-np.sum(np.asarray(means) ** 2, -1) / (2 * 0.2 ** 2))
  np.testing.assert_allclose(raw_b - raw_0, blob, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(albedo_b, albedo_0)
  assert np.all((albedo_b > 0) & (albedo_b < 1))


def test_paper_architecture_parameter_count():
  """5 pre-LN residual blocks x 128 on a 48-feature IPE (L = 8, 3 axes, sin and cos)."""
  mlp = field.NeRFMLP()
  params = mlp.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), 0.05)['params']
  count = sum(x.size for x in jax.tree.leaves(params))
  w = 128
  expected = (48 * w + w) + 5 * (2 * w + 2 * (w * w + w)) + 2 * w + (w * 4 + 4)
  assert count == expected


def test_ipe_covariance_readings():
  assert field.ipe_variance(0.05, 'lambda') == pytest.approx(0.05)
  assert field.ipe_variance(0.05, 'lambda_squared') == pytest.approx(0.0025)
  with pytest.raises(ValueError, match='field.ipe_covariance'):
    field.ipe_variance(0.05, 'sigma')

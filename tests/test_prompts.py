"""Tests for dreamfusion_jax/prompts.py: view buckets and blend weights [P §3.2, A.2]."""
import jax
import numpy as np
import pytest

from dreamfusion_jax.defaults import get_config
from dreamfusion_jax import prompts

PLAIN, FRONT, SIDE, BACK, OVERHEAD = range(5)


def _cfg(mode='discrete'):
  cfg = get_config().prompts
  cfg.view_mode = mode
  return cfg


def test_view_prompts_format():
  rows = prompts.view_prompts('a hamburger')
  assert rows == ['a hamburger', 'a hamburger, front view', 'a hamburger, side view',
                  'a hamburger, back view', 'a hamburger, overhead view']
  assert prompts.VIEW_WORDS == ('front', 'side', 'back', 'overhead')
  for row, view in zip(range(1, 5), prompts.VIEW_WORDS):
    assert rows[row].endswith(f'{view} view')


@pytest.mark.parametrize('el,az,row', [
    (0.0, 0.0, FRONT),
    (0.0, 44.9, FRONT), (0.0, 45.1, SIDE),
    (0.0, -44.9, FRONT), (0.0, -45.1, SIDE),
    (0.0, 45.0, SIDE),  # |az| < 45 is front, so 45 itself is side
    (0.0, 134.9, SIDE), (0.0, 135.1, BACK),
    (0.0, -134.9, SIDE), (0.0, -135.1, BACK),
    (0.0, 90.0, SIDE), (0.0, -90.0, SIDE),
    (0.0, 180.0, BACK), (0.0, -180.0, BACK),
    (0.0, 359.0, FRONT), (0.0, 315.1, FRONT), (0.0, 314.9, SIDE), (0.0, 200.0, BACK),
    (59.9, 0.0, FRONT), (60.1, 0.0, OVERHEAD), (60.0, 0.0, FRONT),
    (59.9, 180.0, BACK), (60.1, 180.0, OVERHEAD), (90.0, 90.0, OVERHEAD),
    (-10.0, 100.0, SIDE),
])
def test_discrete_buckets(el, az, row):
  assert int(prompts.view_index(el, az, _cfg())) == row
  w = np.asarray(prompts.view_weights(el, az, _cfg('discrete')))
  np.testing.assert_array_equal(w, np.eye(5, dtype=np.float32)[row])


def test_thresholds_come_from_config():
  cfg = _cfg()
  cfg.front_deg, cfg.back_deg, cfg.overhead_deg = 60.0, 120.0, 30.0
  assert int(prompts.view_index(0.0, 50.0, cfg)) == FRONT
  assert int(prompts.view_index(0.0, 125.0, cfg)) == BACK
  assert int(prompts.view_index(40.0, 0.0, cfg)) == OVERHEAD


@pytest.mark.parametrize('az,expected', [
    (0.0, [0, 1.0, 0, 0, 0]),
    (45.0, [0, 0.5, 0.5, 0, 0]),
    (-45.0, [0, 0.5, 0.5, 0, 0]),
    (90.0, [0, 0, 1.0, 0, 0]),
    (135.0, [0, 0, 0.5, 0.5, 0]),
    (180.0, [0, 0, 0, 1.0, 0]),
    (-180.0, [0, 0, 0, 1.0, 0]),
    (30.0, [0, 2 / 3, 1 / 3, 0, 0]),
    (-150.0, [0, 0, 1 / 3, 2 / 3, 0]),
    (270.0, [0, 0, 1.0, 0, 0]),
])
def test_interpolated_hand_values(az, expected):
  w = np.asarray(prompts.view_weights(10.0, az, _cfg('interpolated')))
  np.testing.assert_allclose(w, expected, atol=1e-6)


def test_interpolated_overhead_is_one_hot():
  w = np.asarray(prompts.view_weights(60.1, 45.0, _cfg('interpolated')))
  np.testing.assert_array_equal(w, np.eye(5, dtype=np.float32)[OVERHEAD])
  w = np.asarray(prompts.view_weights(59.9, 45.0, _cfg('interpolated')))
  np.testing.assert_allclose(w, [0, 0.5, 0.5, 0, 0], atol=1e-6)


def _random_angles(n=5000):
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  el = jax.random.uniform(k1, (n,), minval=-10.0, maxval=90.0)
  az = jax.random.uniform(k2, (n,), minval=-400.0, maxval=400.0)
  return el, az


@pytest.mark.parametrize('mode', ['discrete', 'interpolated', 'none'])
def test_weights_sum_to_one_jit_vmap(mode):
  cfg = _cfg(mode)
  el, az = _random_angles()
  fn = jax.jit(jax.vmap(lambda e, a: prompts.view_weights(e, a, cfg)))
  w = np.asarray(fn(el, az))
  assert w.shape == (el.shape[0], 5) and w.dtype == np.float32
  assert np.all(w >= 0.0)
  np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
  # Elementwise on arrays without vmap gives the same thing.
  np.testing.assert_allclose(np.asarray(prompts.view_weights(el, az, cfg)), w, atol=1e-6)
  if mode == 'none':
    np.testing.assert_array_equal(w, np.broadcast_to(np.eye(5, dtype=np.float32)[PLAIN], w.shape))
  else:
    assert np.all(w[:, PLAIN] == 0.0)
    over = np.asarray(el) > 60.0
    np.testing.assert_array_equal(w[over, OVERHEAD], 1.0)
    assert np.all(w[~over, OVERHEAD] == 0.0)
  if mode == 'discrete':
    idx = np.asarray(jax.jit(jax.vmap(lambda e, a: prompts.view_index(e, a, cfg)))(el, az))
    assert idx.dtype == np.int32
    np.testing.assert_array_equal(np.argmax(w, -1), idx)
    assert set(np.unique(idx)) == {FRONT, SIDE, BACK, OVERHEAD}


def test_interpolated_dominant_row_agrees_with_discrete():
  """Away from the bucket boundaries the largest blend weight is the discrete bucket."""
  el, az = _random_angles()
  a = np.abs((np.asarray(az) + 180.0) % 360.0 - 180.0)
  ok = (np.abs(a - 45.0) > 0.5) & (np.abs(a - 135.0) > 0.5)
  w = np.asarray(prompts.view_weights(el, az, _cfg('interpolated')))
  idx = np.asarray(prompts.view_index(el, az, _cfg()))
  np.testing.assert_array_equal(np.argmax(w, -1)[ok], idx[ok])


def test_none_mode_single_view():
  for el, az in [(0.0, 0.0), (80.0, 90.0), (-10.0, 180.0)]:
    w = np.asarray(jax.jit(lambda e, a: prompts.view_weights(e, a, _cfg('none')))(el, az))
    np.testing.assert_array_equal(w, np.eye(5, dtype=np.float32)[PLAIN])


def test_unknown_mode_raises():
  with pytest.raises(ValueError, match=r'prompts\.view_mode') as info:
    prompts.view_weights(0.0, 0.0, _cfg('nearest'))
  msg = str(info.value)
  for allowed in ('discrete', 'interpolated', 'none', 'nearest'):
    assert allowed in msg
  # ...also when traced: the error is raised in Python, at trace time.
  with pytest.raises(ValueError, match=r'prompts\.view_mode'):
    jax.jit(lambda e, a: prompts.view_weights(e, a, _cfg('Discrete')))(0.0, 0.0)

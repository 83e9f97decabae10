"""Tests for dreamfusion_jax/shampoo.py against google-research's reference Shampoo.

The reference is `precondition.distributed_shampoo` (precondition-opt 0.3.0). It calls
jax.tree_map / jax.tree_flatten / jax.tree_unflatten, which jax 0.10 removed; the
`reference` fixture aliases them for the duration of one test only.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax import shampoo

# The reference asks for float64 roots, which jax truncates to float32 with a warning.
pytestmark = pytest.mark.filterwarnings('ignore:Explicitly requested dtype')

LR = 0.01


@pytest.fixture
def reference(monkeypatch):
  for name in ('tree_map', 'tree_flatten', 'tree_unflatten'):
    monkeypatch.setattr(jax, name, getattr(jax.tree_util, name), raising=False)
  from precondition import distributed_shampoo  # pylint: disable=import-outside-toplevel
  return distributed_shampoo


def _mlp_params():
  k = jax.random.split(jax.random.PRNGKey(0), 3)
  # b1[0] = -100 kills hidden unit 0: exact zeros in the gradients of w1, b1 and w2.
  b1 = jnp.full((12,), 0.05, jnp.float32).at[0].set(-100.0)
  return {'w1': jax.random.normal(k[0], (20, 12)) / 4.5, 'b1': b1,
          'w2': jax.random.normal(k[1], (12, 3)) / 3.5,
          'conv': jax.random.normal(k[2], (3, 3, 2, 4)) / 4.0, 'scale': jnp.array(0.5, jnp.float32)}


def _mlp_loss(params):
  """A fixed loss touching every param: ReLU MLP (exact zero grads too), conv, scalar."""
  x = jax.random.normal(jax.random.PRNGKey(1), (64, 20))
  y = jax.random.normal(jax.random.PRNGKey(2), (64, 3))
  h = jax.nn.relu(x @ params['w1'] + params['b1'])
  img = x[:, :18].reshape(64, 3, 3, 2)
  conv = jax.lax.conv_general_dilated(img, params['conv'], (1, 1), 'VALID',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return (jnp.mean((params['scale'] * h @ params['w2'] - y) ** 2)
          + jnp.mean(jnp.tanh(conv - 0.3) ** 2))


def _paper_params():
  """Every statistic is 128 x 128, so the reference's padding to the largest is a no-op."""
  k = jax.random.split(jax.random.PRNGKey(3), 4)
  return {'w': jax.random.normal(k[0], (256, 128)) * 0.05,    # 2 x 1 blocks of 128
          'b': jnp.zeros((128,)),                               # 1-D: full 128 x 128
          'v': jax.random.normal(k[1], (4, 32)),                # merged to a 128-vector
          'k': jax.random.normal(k[2], (2, 4, 16, 128)) * 0.05,  # merged to (128, 128)
          'emb': jax.random.normal(k[3], (4100,)),              # dim > 4096: skipped
          's': jnp.array(1.0, jnp.float32)}                     # scalar: skipped


def _random_grads(params, step):
  leaves, treedef = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(100 + step), len(leaves))
  return treedef.unflatten([jax.random.normal(k, p.shape) * (i + 1)
                            for i, (k, p) in enumerate(zip(keys, leaves))])


CASES = {
    # The paper's flags (DreamFusion A.2) with everything else at the reference default.
    'paper': (dict(block_size=128, beta1=0.9, beta2=0.9, exponent_override=2,
                   matrix_epsilon=1e-6), _paper_params, None),
    # Small blocks and merge size: (20, 12) -> blocks of (8|8|4) x (8|4), conv (9, 8).
    'blocks8': (dict(block_size=8, beta1=0.9, beta2=0.9, exponent_override=2,
                     matrix_epsilon=1e-6, merge_small_dims_block_size=16), _mlp_params, _mlp_loss),
    # Other flags: p = 2 * rank (4 and 8), averaged momentum, coupled weight decay,
    # statistics/roots only every few steps, no shape merging.
    'flags': (dict(block_size=8, beta1=0.8, beta2=0.99, exponent_override=0,
                   matrix_epsilon=1e-5, moving_average_for_momentum=True,
                   start_preconditioning_step=3, preconditioning_compute_steps=3,
                   statistics_compute_steps=2, weight_decay=1e-3,
                   best_effort_shape_interpretation=False), _mlp_params, _mlp_loss),
}


@pytest.mark.parametrize('case', list(CASES))
def test_matches_reference(reference, case):
  """20 steps: params after each step equal the reference's (rtol 1e-4); d == -upd / lr."""
  flags, make_params, loss = CASES[case]
  params = make_params()
  ref = reference.distributed_shampoo(LR, graft_type=reference.GraftingType.SQRT_N, **flags)
  ours = shampoo.scale_by_shampoo(graft_type='sqrt_n', **flags)
  ref_update, our_update = jax.jit(ref.update), jax.jit(ours.update)
  grad_fn = jax.jit(jax.grad(loss)) if loss else None
  ref_params, our_params = params, params
  ref_state, our_state = ref.init(params), ours.init(params)
  worst = 0.0
  for step in range(20):
    # Each optimizer gets the gradient at its own params (or the same random gradient).
    ref_g = grad_fn(ref_params) if loss else _random_grads(params, step)
    our_g = grad_fn(our_params) if loss else ref_g
    upd, ref_state = ref_update(ref_g, ref_state, ref_params)
    direction, our_state = our_update(our_g, our_state, our_params)
    ref_params = jax.tree_util.tree_map(lambda p, u: p + u, ref_params, upd)
    our_params = jax.tree_util.tree_map(lambda p, d: p - LR * d, our_params, direction)
    for name in params:
      want, got = np.asarray(ref_params[name]), np.asarray(our_params[name])
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=f'{name} @ {step}')
      worst = max(worst, float(np.max(np.abs(got - want) / (1e-6 + 1e-4 * np.abs(want)))))
      # Directions: the reference's update == -lr * ours, to 1e-4 of its largest entry.
      want, got = np.asarray(upd[name]), -LR * np.asarray(direction[name])
      np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max(),
                                 err_msg=f'direction {name} @ {step}')
  # The reference never needed a ridge retry nor rejected a root on these statistics.
  for stats in ref_state.stats.values():
    if stats.statistics:
      assert float(jnp.max(stats.training_metrics.inverse_pth_root_errors)) < 1e-3
      assert float(jnp.max(stats.training_metrics.total_retries)) == 1.0  # one try each
  print(f'{case}: max |ours - ref| / (1e-6 + 1e-4 |ref|) over params and steps: {worst:.2f}')


def _spd(key, d, cond):
  q, _ = jnp.linalg.qr(jax.random.normal(key, (d, d)))
  lam = np.logspace(0, np.log10(cond), d) * 0.37
  return np.asarray(q, np.float64), lam


@pytest.mark.parametrize('p', [2, 4])
@pytest.mark.parametrize('d', [1, 6, 24])
def test_inverse_pth_root_matches_eigh(p, d):
  """Newton root == V diag((lambda + eps)^(-1/p)) V^T (f64 eigh), eps = 1e-6 lambda_max."""
  q, lam = _spd(jax.random.PRNGKey(d), d, cond=1e3)
  mat = (q * lam) @ q.T
  root, error = jax.jit(shampoo.matrix_inverse_pth_root, static_argnums=1)(
      jnp.asarray(mat, jnp.float32), p)
  e, v = np.linalg.eigh(mat)
  want = (v * (e + 1e-6 * e[-1]) ** (-1.0 / p)) @ v.T
  np.testing.assert_allclose(np.asarray(root), want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
  assert float(error) < 1e-5


def test_inverse_pth_root_relative_ridge():
  """On a singular matrix the null space gets (1e-6 lambda_max)^(-1/2): relative ridge."""
  q, lam = _spd(jax.random.PRNGKey(7), 6, cond=10.0)
  lam[:2] = 0.0
  mat = jnp.asarray((q * lam) @ q.T, jnp.float32)
  null = q[:, 0]
  for scale in (1e-3, 1e3):  # the ridge follows the matrix's scale
    root, _ = shampoo.matrix_inverse_pth_root(mat * scale, 2)
    np.testing.assert_allclose(null @ np.asarray(root, np.float64) @ null,
                               (1e-6 * lam.max() * scale) ** -0.5, rtol=1e-2)
  absolute, _ = shampoo.matrix_inverse_pth_root(mat, 2, 1e-3, relative_matrix_epsilon=False)
  np.testing.assert_allclose(null @ np.asarray(absolute, np.float64) @ null, 1e-3 ** -0.5,
                             rtol=1e-2)


@pytest.mark.parametrize('kind', ['spd', 'singular', 'retry'])
def test_inverse_pth_root_matches_reference_newton(reference, kind):
  """Same root and error as the reference's `matrix_inverse_pth_root`, retries included."""
  q, lam = _spd(jax.random.PRNGKey(11), 12, cond=1e3)
  if kind != 'spd':
    lam[:5] = 0.0
  mat = jnp.asarray((q * lam) @ q.T, jnp.float32)
  # 'retry': an absolute 1e-9 ridge is below f32 resolution, Newton stalls at error >
  # 0.05 and both retry with the ridge times 10, 100, ...
  kw = dict(ridge_epsilon=1e-9, relative_matrix_epsilon=False) if kind == 'retry' else {}
  want, want_metrics = reference.matrix_inverse_pth_root(mat, 2, **kw)
  got, error = shampoo.matrix_inverse_pth_root(mat, 2, **kw)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5,
                             atol=1e-6 * float(jnp.abs(want).max()))
  np.testing.assert_allclose(float(error), float(want_metrics.inverse_pth_root_errors),
                             rtol=1e-3, atol=1e-7)
  assert (float(want_metrics.total_retries) > 1) == (kind == 'retry')


def test_failed_root_keeps_old_preconditioner():
  """inverse_failure_threshold: a NaN statistic leaves the previous root in place."""
  params = {'w': jnp.zeros((6, 5))}
  opt = shampoo.scale_by_shampoo(block_size=8)
  update = jax.jit(opt.update)
  state = opt.init(params)
  for step in range(3):
    _, state = update(_random_grads(params, step), state)
  before = state.params['w'].preconditioners
  _, state = update({'w': jnp.full((6, 5), jnp.nan)}, state)
  assert np.isnan(np.asarray(state.params['w'].statistics[0])).all()
  for old, new in zip(before, state.params['w'].preconditioners):
    np.testing.assert_array_equal(np.asarray(new), np.asarray(old))


@pytest.mark.parametrize('nesterov', [True, False])
def test_grafted_direction_before_start_and_state_shapes(nesterov):
  """Steps 0..4 follow (Nesterov) momentum on sign(g), then Shampoo does."""
  params = {'w': jnp.zeros((20, 12)), 'b': jnp.zeros((5,)), 's': jnp.zeros(()),
            'emb': jnp.zeros((4100,))}
  opt = shampoo.scale_by_shampoo(block_size=8, nesterov=nesterov)
  state = opt.init(params)

  # State: a pytree of arrays; (20, 12) merges to 240 = 30 blocks of 8, the bias gets a
  # 5 x 5 statistic, the scalar and the > 4096 vector none.
  assert all(isinstance(x, jax.Array) for x in jax.tree_util.tree_leaves(state))
  assert state.count.shape == () and state.count.dtype == jnp.int32
  shapes = {k: [s.shape for s in v.statistics] for k, v in state.params.items()}
  assert shapes == {'w': [(8, 8)] * 30, 'b': [(5, 5)], 's': [], 'emb': []}
  for k, v in state.params.items():
    assert [p.shape for p in v.preconditioners] == shapes[k]
    assert v.momentum.shape == v.graft_momentum.shape == params[k].shape
  assert opt.init({'w': jnp.zeros((20, 12))}).params['w'].statistics[0][0, 0] == 1e-6
  blocked = shampoo.scale_by_shampoo(block_size=8, merge_small_dims_block_size=16)
  assert [s.shape[0] for s in blocked.init(params).params['w'].statistics] == [
      8, 8, 8, 4, 8, 8, 8, 4, 4, 8, 4, 4]

  update = jax.jit(opt.update)
  graft_momentum = jax.tree_util.tree_map(np.zeros_like, params)
  for step in range(7):
    grads = _random_grads(params, step)
    grads['w'] = grads['w'].at[0].set(0.0)  # sign(0) = 0 counts in the graft norm
    direction, state = update(grads, state)
    assert int(state.count) == step + 1
    for k in params:
      sign = np.sign(np.asarray(grads[k]))
      graft_momentum[k] = 0.9 * graft_momentum[k] + sign
      grafted = sign + 0.9 * graft_momentum[k] if nesterov else graft_momentum[k]
      got = np.asarray(direction[k])
      if step < 5 or k in ('s', 'emb'):  # skipped params always follow the graft
        np.testing.assert_allclose(got, grafted, rtol=1e-5, err_msg=f'{k} @ {step}')
      else:
        assert not np.allclose(got, grafted, rtol=1e-2), f'{k} @ {step}'
  for k in ('w', 'b'):
    np.testing.assert_allclose(state.params[k].graft_momentum, graft_momentum[k], rtol=1e-5)


def test_shampoo_step_matches_direct_formula():
  """One step from start 0 without momentum: L^-1/2 G R^-1/2 scaled to ||sign G||."""
  g = jax.random.normal(jax.random.PRNGKey(5), (5, 7)).at[2, 3].set(0.0)
  opt = shampoo.scale_by_shampoo(beta1=0.0, start_preconditioning_step=0,
                                 merge_small_dims_block_size=16)
  direction, _ = opt.update({'g': g}, opt.init({'g': g}))
  g64 = np.asarray(g, np.float64)

  def inv_sqrt(stat):
    e, v = np.linalg.eigh(stat)
    return (v * (e + 1e-6 * e[-1]) ** -0.5) @ v.T

  left = inv_sqrt(0.9e-6 * np.eye(5) + 0.1 * g64 @ g64.T)
  right = inv_sqrt(0.9e-6 * np.eye(7) + 0.1 * g64.T @ g64)
  want = left @ g64 @ right
  want *= np.sqrt(g64.size - 1) / np.linalg.norm(want)  # ||sign g||: one zero entry
  np.testing.assert_allclose(np.asarray(direction['g']), want, rtol=1e-3, atol=1e-4)


def test_rejects_other_graft_types():
  with pytest.raises(NotImplementedError, match='SQRT_N'):
    shampoo.scale_by_shampoo(graft_type='adagrad')


def test_runs_under_pmap_with_replicated_state():
  """The state is a pytree of arrays that replicates and steps under jax.pmap."""
  params = {'w': jnp.ones((6, 5)), 'b': jnp.ones((5,))}
  opt = shampoo.scale_by_shampoo(block_size=4, start_preconditioning_step=1)
  n = jax.local_device_count()
  state = jax.tree_util.tree_map(lambda x: jnp.stack([x] * n), opt.init(params))
  step = jax.pmap(opt.update)
  for i in range(3):
    grads = jax.tree_util.tree_map(lambda x: jnp.stack([x] * n), _random_grads(params, i))
    direction, state = step(grads, state)
  assert direction['w'].shape == (n, 6, 5) and int(state.count[0]) == 3
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(direction))

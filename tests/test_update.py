"""The pmap'd update on 4 (virtual CPU) devices: per-replica randomness, gradient averaging,
determinism across processes, and the skip of non-finite steps."""
import concurrent.futures
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT


WORKERS = {  # name: (tests.update_worker's arguments, device count)
    'replicas_adam': (('replicas', '--optimizer=adam'), 4),
    'replicas_shampoo': (('replicas', '--optimizer=shampoo'), 4),
    'digest_a': (('digest', '--optimizer=shampoo', '--steps=3'), 4),
    'digest_b': (('digest', '--optimizer=shampoo', '--steps=3'), 4),
    'nan': (('digest', '--optimizer=shampoo', '--steps=3', '--nan_step=1'), 4),
    'batch_1x4': (('batch', '--optimizer=adam', '--steps=2'), 1),
    'batch_4x1': (('batch', '--optimizer=adam', '--steps=2'), 4),
}
# Two workers at a time, one per core: measured on the 2-core machine, this module took 162 s
# with five at once and 132 s two at a time (each worker alone: 19-28 s, mostly compiling).
JOBS = 2


def launch(tmp_path, name, args, devices):
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
             JAX_PLATFORMS='cpu')
  out = tmp_path / f'{name}.npz'
  proc = subprocess.Popen([sys.executable, '-m', 'tests.update_worker', args[0], str(out),
                           *args[1:]], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  return proc, out


def run_worker(tmp_path, name):
  """What worker `name` of WORKERS wrote, once it has ended."""
  proc, out = launch(tmp_path, name, *WORKERS[name])
  log, _ = proc.communicate(timeout=900)
  assert proc.returncode == 0, f'{name}: {log}'
  return dict(np.load(out))


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """{worker: what it wrote} of every worker in WORKERS, JOBS at a time."""
  tmp = tmp_path_factory.mktemp('update')
  with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
    return dict(zip(WORKERS, pool.map(lambda name: run_worker(tmp, name), WORKERS)))


@pytest.mark.parametrize('name', ['replicas_adam', 'replicas_shampoo'])
def test_replicas_draw_from_their_folded_keys(runs, name):
  r = runs[name]
  for field in ('t', 'elevation_deg', 'azimuth_deg', 'shading_mode'):
    np.testing.assert_array_equal(r[f'pmap_{field}'], r[f'direct_{field}'], err_msg=field)
  # Every replica draws differently.
  assert len(np.unique(r['pmap_t'])) == 4
  assert len(np.unique(r['pmap_azimuth_deg'])) == 4


@pytest.mark.parametrize('name', ['replicas_adam', 'replicas_shampoo'])
def test_update_equals_single_device_step_on_mean_gradient(runs, name):
  r = runs[name]
  assert r['identical_replicas']
  step = np.abs(r['pmap_params'] - r['start_params']).max()
  assert step > 1e-3  # the step moved the params
  np.testing.assert_allclose(r['pmap_params'], r['direct_params'], rtol=1e-5, atol=1e-6 * step)
  # ... and it is the MEAN that matters: one replica's gradient alone gives other params.
  assert np.abs(r['pmap_params'] - r['replica0_params']).max() > 10 * 1e-6 * step


def test_two_processes_same_seed_bit_identical(runs):
  assert runs['digest_a']['step'] == 3
  assert str(runs['digest_a']['digest']) == str(runs['digest_b']['digest'])


def test_non_finite_step_is_skipped_and_counted(runs):
  r = runs['nan']
  np.testing.assert_array_equal(r['finite'], [True, False, True])
  assert r['skipped'] == 1 and r['step'] == 3
  assert str(r['digest']) != str(runs['digest_a']['digest'])


def test_skipping_unread_normals_keeps_the_loss_and_its_gradient(monkeypatch):
  """With every render albedo and the orientation weights at 0, nothing reads the normals: the
  step without the density gradient's second backward pass has the same SDS loss and gradient."""
  import jax
  from dreamfusion_jax import train
  from dreamfusion_jax.guidance import standins
  from tests import update_worker

  config = update_worker.tiny_config('adam')
  assert train.needs_normals(config)  # the paper's shading mix reads them
  config.ablation.shading = False
  assert train.needs_normals(config)  # ... and so does the orientation loss
  config.schedule.orientation_start = config.schedule.orientation_end = 0.0
  assert not train.needs_normals(config)
  model = train.build_model(config, standins.gaussian_guidance(config))
  state = train.init_state(model, jax.random.PRNGKey(0))
  frozen = train.make_frozen(model)
  views = train.draw_replica(jax.random.PRNGKey(3), 0, 0, config, num_views=1)

  def grads_and_metrics():  # Compiled (op by op: 50 s for both calls, 23 s); traced each call.
    grads, (metrics, _) = jax.jit(jax.grad(lambda params: train.loss_fn(
        params, model, frozen, views, state.step), has_aux=True))(state.params)
    return np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads)]), metrics

  g_without, m_without = grads_and_metrics()
  monkeypatch.setattr(train, 'needs_normals', lambda config: True)
  g_with, m_with = grads_and_metrics()
  assert m_with['loss_orientation'] > 0 and m_without['loss_orientation'] == 0
  np.testing.assert_allclose(m_without['loss_sds'], m_with['loss_sds'], rtol=1e-6)
  scale = np.abs(g_with).max()
  assert scale > 0
  np.testing.assert_allclose(g_without, g_with, rtol=1e-5, atol=1e-6 * scale)


def test_batch_of_four_on_one_device_equals_one_view_on_each_of_four(runs):
  """render.batch_size is global: 1 device x 4 views and 4 devices x 1 view draw the same
  cameras, lights, t and eps for every view, and take the same steps."""
  one, four = runs['batch_1x4'], runs['batch_4x1']
  assert int(one['per_device']) == 4 and int(four['per_device']) == 1
  for field in ('origin', 'light', 't', 'eps'):
    np.testing.assert_array_equal(one[field], four[field], err_msg=field)
  for field in ('t', 'elevation_deg', 'azimuth_deg', 'shading_mode'):  # as the update drew them
    np.testing.assert_array_equal(one[f'update_{field}'], four[f'update_{field}'], err_msg=field)
  np.testing.assert_array_equal(one['update_t'][0], one['t'])
  assert len(np.unique(one['t'])) == 4  # four different views, not one repeated
  moved = np.abs(one['params'] - one['start_params']).max()
  assert moved > 1e-2  # two steps of lr 1e-2 moved the params
  # Equal to float rounding of the mean over views (measured: 2e-6 of a 2e-2 move).
  np.testing.assert_allclose(four['params'], one['params'], rtol=0, atol=1e-3 * moved)

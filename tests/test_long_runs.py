"""Long runs that survive (run_train.py end to end on a tiny toy world, 4 virtual CPU devices):
kill -9 and resume, corrupted checkpoints, a checkpoint that cannot be written, workdir reuse and
extension, a non-finite step, and the same run on 2 processes x 2 devices.

Every run here uses the same config (RUN) and ends bit-identical (params_digest) to one
uninterrupted reference run, shared by the module. Steps 0..7 checkpoint after every step and
step 5 is made non-finite (debug.nan_step), so every resume below also crosses a skipped step.
A persistent compilation cache makes each run after the first start in seconds.
"""
import glob
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import time

import jax
import ml_collections
import pytest

from dreamfusion_jax import checkpoints, train
from dreamfusion_jax.errors import SetupError
from tests import helpers

pytestmark = pytest.mark.slow

STEPS, NAN_STEP, KEPT = 8, 5, 4
RUN = [
    f'--config.num_steps={STEPS}', '--config.render.resolution=12',
    '--config.render.batch_size=4',  # One view on each of the 4 devices (2 x 2: the same views).
    '--config.render.num_samples=12', '--config.render.num_importance_samples=4',
    '--config.field.width=16', '--config.field.num_blocks=1',
    '--config.toy.images_per_object=12', "--config.toy.objects=('toy hamburger','red ball')",
    # Shampoo, preconditioning from step 2: the richest optimizer state to resume exactly.
    '--config.optimizer.name=shampoo', '--config.optimizer.shampoo.start_preconditioning_step=2',
    '--config.log.every=1', '--config.log.preview_every=4', '--config.log.preview_resolution=12',
    '--config.log.checkpoint_every=1', f'--config.log.max_checkpoints={KEPT}',
    f'--config.debug.nan_step={NAN_STEP}',
]
TMP_SUFFIX = '.orbax-checkpoint-tmp'


# XLA's CPU matmuls split their sums over its thread pool, whose size is max(NPROC, or the core
# count, and the process's device count): a process of 4 devices and one of 2 would round
# differently. Every run here gets the same pool, so layouts compare bit for bit (README, "GPUs,
# TPUs and pods").
CPU_THREADS = '4'


def environment(world, devices: int, cache: str = 'jax_cache', **extra):
  return dict(os.environ, JAX_PLATFORMS='cpu', NPROC=CPU_THREADS,
              XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
              JAX_COMPILATION_CACHE_DIR=str(world / cache),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
              JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0', **extra)


def launch(world, workdir, *overrides, devices=4, env=None, preexec_fn=None):
  return helpers.launch_train(f"--config.toy.cache_dir={world / 'toy_cache'}", *RUN, *overrides,
                              workdir=workdir, env=env or environment(world, devices),
                              preexec_fn=preexec_fn)


def run(world, workdir, *overrides, **kwargs):
  proc = launch(world, workdir, *overrides, **kwargs)
  out, err = proc.communicate(timeout=600)
  return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def metrics(workdir):
  with open(os.path.join(workdir, 'metrics.json')) as f:
    return json.load(f)


def load_config(workdir):
  with open(os.path.join(workdir, 'config.json')) as f:
    return ml_collections.ConfigDict(json.load(f))


def manager_and_template(workdir):
  config = load_config(workdir)
  template = train.init_state(train.build_model(config, guidance=None), jax.random.PRNGKey(0))
  return checkpoints.manager(str(workdir), config), template


def state_at(workdir, step):
  manager, template = manager_and_template(workdir)
  return checkpoints.restore(manager, step, template)


def steps_on_disk(workdir):
  return sorted(int(n) for n in os.listdir(checkpoints.directory(workdir)) if n.isdigit())


def temporary_entries(workdir):
  return [n for n in os.listdir(checkpoints.directory(workdir)) if TMP_SUFFIX in n]


def files_digest(path):
  """sha256 over every file's relative path and bytes under `path`."""
  digest = hashlib.sha256()
  for name in sorted(glob.glob(os.path.join(path, '**'), recursive=True)):
    if os.path.isfile(name):
      digest.update(os.path.relpath(name, path).encode())
      with open(name, 'rb') as f:
        digest.update(f.read())
  return digest.hexdigest()


@pytest.fixture(scope='module')
def world(tmp_path_factory):
  """A directory with the toy dataset and compilation caches, and the uninterrupted run."""
  world = tmp_path_factory.mktemp('long_runs')
  proc = run(world, world / 'reference')
  assert proc.returncode == 0, proc.stderr[-3000:]
  return world


@pytest.fixture(scope='module')
def reference(world):
  return metrics(world / 'reference')


def test_non_finite_step_is_skipped_on_every_replica_and_counted(world, reference):
  assert reference['steps'] == STEPS and reference['skipped_steps'] == 1
  assert reference['skipped_per_replica'] == [1, 1, 1, 1]
  assert reference['replicas_identical']
  assert steps_on_disk(world / 'reference') == list(range(STEPS - KEPT + 1, STEPS + 1))
  before, after, later = (state_at(world / 'reference', s) for s in (NAN_STEP, NAN_STEP + 1,
                                                                     NAN_STEP + 2))
  # The NaN step changed nothing but the counters; training went on after it.
  assert int(before.skipped) == 0 and int(after.skipped) == 1 and int(after.step) == NAN_STEP + 1
  assert train.params_digest(after.params) == train.params_digest(before.params)
  assert train.params_digest(after.opt_state) == train.params_digest(before.opt_state)
  assert train.params_digest(later.params) != train.params_digest(after.params)
  assert train.params_digest(later.params) != reference['params_digest']


def test_resume_after_kill_at_any_moment(world, reference):
  workdir = world / 'killed'
  ckpts = checkpoints.directory(workdir)

  def kill_when(condition, *overrides):
    """Launches the run and SIGKILLs it as soon as condition() holds; returns the process."""
    started = time.time()
    proc = launch(world, workdir, *overrides)
    while proc.poll() is None and not condition(started):
      time.sleep(0.002)
    if proc.poll() is None:
      proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=600)
    return proc

  def newest(name):
    return lambda started: os.path.exists(name(started))

  def writing(started):
    """A checkpoint being written by this launch (orbax's temporary directory, new since)."""
    return os.path.isdir(ckpts) and any(
        os.stat(os.path.join(ckpts, n)).st_mtime >= started - 1e-3
        for n in temporary_entries(workdir) if os.path.exists(os.path.join(ckpts, n)))

  # 1. Before any checkpoint (building, compiling).
  proc = kill_when(newest(lambda _: workdir / 'config.json'))
  assert proc.returncode == -signal.SIGKILL
  # 2. While training, right after checkpoint 2.
  proc = kill_when(newest(lambda _: os.path.join(ckpts, '2')))
  assert proc.returncode == -signal.SIGKILL and 2 in steps_on_disk(workdir)
  # 3. While a checkpoint is being written: retried until the kill lands mid-write.
  for _ in range(4):
    proc = kill_when(writing)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    if temporary_entries(workdir):
      break
  assert temporary_entries(workdir), 'no kill landed while a checkpoint was being written'
  resumable = max(steps_on_disk(workdir))
  # 4. The same command again, to the end.
  proc = run(world, workdir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'resuming from step {resumable}' in proc.stderr
  result = metrics(workdir)
  assert result['resumed_from_step'] == resumable and result['skipped_steps'] == 1
  assert result['params_digest'] == reference['params_digest']
  assert not temporary_entries(workdir)  # the killed write was cleaned up


def corrupt_truncated(step_dir):
  """Halves the largest file of the state (a write cut short)."""
  files = [f for f in glob.glob(os.path.join(step_dir, 'state', '**'), recursive=True)
           if os.path.isfile(f)]
  largest = max(files, key=os.path.getsize)
  with open(largest, 'r+b') as f:
    f.truncate(os.path.getsize(largest) // 2)


def corrupt_emptied(step_dir):
  """Keeps the directory, loses its contents (renamed, then never reached the disk)."""
  shutil.rmtree(step_dir)
  os.mkdir(step_dir)


def corrupt_wrong_bytes(step_dir):
  """A valid state of another step under this step's integrity record (silent bit rot)."""
  previous = os.path.join(os.path.dirname(step_dir), str(int(os.path.basename(step_dir)) - 1))
  shutil.rmtree(os.path.join(step_dir, 'state'))
  shutil.copytree(os.path.join(previous, 'state'), os.path.join(step_dir, 'state'))


def corrupt_no_integrity(step_dir):
  shutil.rmtree(os.path.join(step_dir, 'integrity'))


@pytest.mark.parametrize('corrupt', [corrupt_truncated, corrupt_emptied, corrupt_wrong_bytes,
                                     corrupt_no_integrity])
def test_corrupted_latest_checkpoint_is_reported_and_the_previous_used(world, tmp_path, corrupt):
  workdir = tmp_path / 'work'
  shutil.copytree(world / 'reference', workdir)
  corrupt(os.path.join(checkpoints.directory(workdir), str(STEPS)))
  manager, template = manager_and_template(workdir)
  reports = []
  state = checkpoints.restore_latest(manager, template, quarantine=str(tmp_path / 'aside'),
                                     report=reports.append)
  assert int(state.step) == STEPS - 1
  expected = state_at(world / 'reference', STEPS - 1)
  assert train.params_digest(state) == train.params_digest(expected)
  assert f'checkpoint {STEPS} in' in reports[0] and 'corrupted or incomplete' in reports[0]
  assert os.listdir(tmp_path / 'aside')[0].startswith(f'{STEPS}-')
  assert steps_on_disk(workdir)[-1] == STEPS - 1 and manager.latest_step() == STEPS - 1


def test_no_readable_checkpoint_is_a_setup_error_that_moves_nothing(world, tmp_path):
  workdir = tmp_path / 'work'
  shutil.copytree(world / 'reference', workdir)
  for step in steps_on_disk(workdir):
    corrupt_no_integrity(os.path.join(checkpoints.directory(workdir), str(step)))
  manager, template = manager_and_template(workdir)
  with pytest.raises(SetupError, match='no checkpoint in .* can be read back'):
    checkpoints.restore_latest(manager, template, quarantine=str(tmp_path / 'aside'),
                               report=lambda _: None)
  assert not os.path.exists(tmp_path / 'aside') and len(steps_on_disk(workdir)) == KEPT


def test_rerun_after_corruption_rewrites_the_step_and_ends_identical(world, reference):
  workdir = world / 'corrupted'
  shutil.copytree(world / 'reference', workdir)
  corrupt_truncated(os.path.join(checkpoints.directory(workdir), str(STEPS)))
  proc = run(world, workdir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'warning: checkpoint {STEPS} in' in proc.stderr
  assert f'resuming from step {STEPS - 1}' in proc.stderr
  assert metrics(workdir)['params_digest'] == reference['params_digest']
  assert steps_on_disk(workdir)[-1] == STEPS
  assert os.listdir(workdir / 'corrupt_checkpoints')[0].startswith(f'{STEPS}-')


def test_checkpoint_write_failure_keeps_the_previous_ones_and_stops(world, reference):
  """A full disk, made with a file-size limit (root ignores a read-only directory's mode): the
  first checkpoint file over 16 KiB fails with EFBIG as ENOSPC would."""
  workdir = world / 'full'
  shutil.copytree(world / 'reference', workdir)
  for step in (STEPS - 1, STEPS):  # Resume from STEPS - 2; the next save is STEPS - 1.
    shutil.rmtree(os.path.join(checkpoints.directory(workdir), str(step)))
  kept = {s: files_digest(os.path.join(checkpoints.directory(workdir), str(s)))
          for s in steps_on_disk(workdir)}
  limit = 16 * 1024

  proc = run(world, workdir, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                                  (limit, limit)))
  assert proc.returncode == 1, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()
  message = '\n'.join(last[-2:])
  assert f'error: could not write checkpoint {STEPS - 1} to' in proc.stderr
  assert 'File too large' in message and 'rerun the same command to resume' in message
  assert 'Traceback' not in proc.stderr
  assert {s: files_digest(os.path.join(checkpoints.directory(workdir), str(s)))
          for s in steps_on_disk(workdir)} == kept
  # With room again, the same command resumes and ends where the uninterrupted run did.
  proc = run(world, workdir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert metrics(workdir)['params_digest'] == reference['params_digest']


def test_extending_a_run_repeats_its_first_steps(world, reference):
  workdir, short = world / 'extended', STEPS - 3
  proc = run(world, workdir, f'--config.num_steps={short}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  # The short run's params are the long run's at the same step: no schedule reads num_steps.
  assert metrics(workdir)['params_digest'] == train.params_digest(
      state_at(world / 'reference', short).params)
  short_metrics = (workdir / 'metrics.json').read_text()
  proc = run(world, workdir)  # The same workdir, num_steps back to STEPS: extends the run.
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'resuming from step {short}' in proc.stderr
  assert metrics(workdir)['params_digest'] == reference['params_digest']
  assert load_config(workdir).num_steps == STEPS
  # The short run's results are kept beside the extended run's.
  assert (workdir / f'metrics_step_{short:06d}.json').read_text() == short_metrics


def test_workdir_reuse_with_another_config_is_refused_unless_overwrite(world, reference):
  workdir = world / 'reused'
  shutil.copytree(world / 'reference', workdir)
  # Strict: even a logging field counts.
  proc = run(world, workdir, '--config.log.preview_every=2')
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert 'holds a run with another config' in proc.stderr
  assert 'config.log.preview_every: 4 there, 2 now' in proc.stderr
  assert '--overwrite' in proc.stderr
  # Fewer steps than already taken: refused, not silently truncated, and config.json untouched.
  before = (workdir / 'config.json').read_bytes()
  proc = run(world, workdir, '--config.num_steps=3')
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert f'config.num_steps=3 is less than the {STEPS} steps' in proc.stderr
  assert (workdir / 'config.json').read_bytes() == before
  # --overwrite deletes the old run and starts again.
  proc = run(world, workdir, '--config.log.preview_every=2', '--config.num_steps=2',
             '--overwrite')
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = metrics(workdir)
  assert result['resumed_from_step'] == 0 and result['steps'] == 2
  assert steps_on_disk(workdir) == [1, 2]
  assert sorted(os.listdir(workdir / 'previews')) == ['step_000002.png']


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_two_processes_of_two_devices_equal_one_of_four(world, reference):
  """The pod path on one machine: jax.distributed over localhost, CPU (gloo) collectives."""
  workdir, port = world / 'two_processes', free_port()
  procs = [launch(world, workdir, env=environment(
      world, 2, cache=f'jax_cache_process_{i}', JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}',
      JAX_NUM_PROCESSES='2', JAX_PROCESS_ID=str(i))) for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
    assert f'done: {STEPS} steps, 1 skipped' in out
  result = metrics(workdir)
  assert result['skipped_per_replica'] == [1, 1]  # process 0's two devices
  assert result['params_digest'] == reference['params_digest']
  # Process 0 alone wrote the checkpoints.
  assert not glob.glob(os.path.join(checkpoints.directory(workdir), '*', '*', 'ocdbt.process_1'))

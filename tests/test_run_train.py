"""run_train.py end to end on a tiny toy world: files, checkpoint digest, config round trip, errors."""
import glob
import json
import os
import shutil
import signal

import jax
import ml_collections
import pytest

from dreamfusion_jax import checkpoints, toy, train
from tests import helpers

# A 4-step tiny run that logs, previews and checkpoints every 2 steps.
TINY = ['--config.num_steps=4', *helpers.TINY_TOY, '--config.log.every=2',
        '--config.log.preview_every=2', '--config.log.checkpoint_every=2']


def run_train(workdir, *overrides, cache_dir):
  return helpers.run_train(f'--config.toy.cache_dir={cache_dir}', *TINY, *overrides,
                           workdir=workdir)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('run')
  proc = run_train(tmp / 'work', cache_dir=tmp / 'cache')
  assert proc.returncode == 0, proc.stderr[-3000:]
  return tmp / 'work', tmp / 'cache'


def test_writes_results_previews_and_events(tiny_run):
  workdir, _ = tiny_run
  metrics = json.loads((workdir / 'metrics.json').read_text())
  assert metrics['steps'] == 4 and metrics['skipped_steps'] == 0
  for key in ('psnr', 'iou', 'normal_err_deg', 'initial_psnr', 'mark_front', 'mark_back'):
    assert key in metrics
  assert set(metrics['final']) >= {'loss', 'loss_sds', 'loss_orientation', 'loss_opacity', 'lr',
                                   't', 'sds_grad_norm', 'skipped'}
  assert sorted(os.listdir(workdir / 'previews')) == ['step_000002.png', 'step_000004.png']
  assert glob.glob(str(workdir / 'tensorboard' / 'events.out.tfevents.*'))


def test_checkpoint_restores_to_the_reported_digest(tiny_run):
  workdir, cache = tiny_run
  config = ml_collections.ConfigDict(json.loads((workdir / 'config.json').read_text()))
  model = train.build_model(config, toy.build_guidance(config))
  manager = checkpoints.manager(str(workdir), config)
  assert manager.latest_step() == 4
  state = checkpoints.restore_or_init(manager, model, jax.random.PRNGKey(123))
  metrics = json.loads((workdir / 'metrics.json').read_text())
  assert train.params_digest(state.params) == metrics['params_digest']
  fresh = train.init_state(model, jax.random.PRNGKey(123))
  assert train.params_digest(fresh.params) != metrics['params_digest']


def test_config_json_loads_back_into_the_same_config(tiny_run):
  workdir, cache = tiny_run
  loaded = ml_collections.ConfigDict(json.loads((workdir / 'config.json').read_text()))
  assert loaded.num_steps == 4 and loaded.prompt == 'toy hamburger'
  assert list(loaded.toy.objects) == ['toy hamburger', 'red ball']
  assert loaded.toy.cache_dir == str(cache)


def test_unknown_guidance_exits_2_without_traceback(tmp_path):
  proc = run_train(tmp_path / 'work', '--config.guidance.name=imagen', cache_dir=tmp_path)
  assert proc.returncode == 2
  assert "guidance.name='imagen'" in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_rerunning_a_finished_run_changes_nothing(tiny_run, tmp_path):
  """The same command on a finished run trains nothing and keeps its metrics.json as it was
  (before, it was rewritten with a wall time of 0.01 s, losing the original)."""
  workdir, cache = tiny_run
  copy = tmp_path / 'copy'
  shutil.copytree(workdir, copy)
  before = {p: (copy / p).read_bytes() for p in ('metrics.json', 'config.json')}
  proc = run_train(copy, cache_dir=cache)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'already finished: 4 steps' in proc.stdout
  assert {p: (copy / p).read_bytes() for p in before} == before


@pytest.mark.slow  # A run to interrupt (about 35 s); the fast suite has no room for it.
def test_ctrl_c_is_one_line_exit_130_and_keeps_the_checkpoints(tiny_run, tmp_path):
  """Ctrl-C once the training loop has started (resuming a copy of the finished run with more
  steps to take): one line, exit 130, no traceback; the checkpoints stay readable."""
  workdir, cache = tiny_run
  copy = tmp_path / 'copy'
  shutil.copytree(workdir, copy)
  with helpers.launch_train(f'--config.toy.cache_dir={cache}', *TINY, '--config.num_steps=100000',
                            workdir=copy, stdout=None) as proc:
    seen = ''
    while 'train:' not in seen:  # tqdm's bar: the loop is starting.
      char = proc.stderr.read(1)
      assert char, seen  # it did not exit first
      seen += char
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=300) == 130, rest
  assert 'Traceback' not in rest
  errors = [line for line in rest.splitlines() if line.startswith('error: ')]
  assert errors == [f'error: interrupted: the checkpoints in {copy}/checkpoints are kept; run the '
                    'same command again to resume from the newest'], rest
  config = ml_collections.ConfigDict(json.loads((copy / 'config.json').read_text()))
  assert checkpoints.manager(str(copy), config).latest_step() >= 4


@pytest.mark.parametrize('body, message', [
    ('X = 1\n', 'the file has no get_config() function returning a ConfigDict'),
    ('def get_config():\n  raise ValueError("a bad value in the config")\n',
     'could not load it: ValueError: a bad value in the config'),
    ('import no_such_module_here\n', "could not load it: ModuleNotFoundError: No module named "
     "'no_such_module_here'"),
], ids=['no get_config', 'get_config raises', 'import fails'])
def test_a_config_file_that_does_not_load_is_one_line_naming_it(tmp_path, body, message):
  path = tmp_path / 'my_config.py'
  path.write_text(body)
  proc = helpers.run_train(workdir=tmp_path / 'work', config=path, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip() == f'error: --config={path}: {message}', proc.stderr[-2000:]
  assert not (tmp_path / 'work').exists()

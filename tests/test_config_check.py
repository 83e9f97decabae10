"""Bad input is refused before anything is built: one message naming the field and what it
allows, exit code 2, no traceback (config_check.py, run_train.py)."""
import os

import jax
import ml_collections
import pytest

from configs import toy
from dreamfusion_jax import config_check, defaults, field, prompts, schedules
from dreamfusion_jax.errors import SetupError
from tests import helpers


def toy_with(changes=(), remove=()):
  """configs/toy.py as a plain ConfigDict (no type safety) with `changes` {path: value}."""
  tree = toy.get_config().to_dict()
  for path, value in dict(changes).items():
    *parents, name = path.split('.')
    node = tree
    for p in parents:
      node = node[p]
    node[name] = value
  for path in remove:
    *parents, name = path.split('.')
    node = tree
    for p in parents:
      node = node[p]
    del node[name]
  return ml_collections.ConfigDict(tree)


# (changes, the message's start): one case per kind of bad input.
BAD = {
    'unknown field': ({'num_step': 3}, 'config.num_step: unknown field; did you mean '
                                       'config.num_steps?'),
    'unknown nested field': ({'render.resolutoin': 3}, 'config.render.resolutoin: unknown field'),
    'wrong type (str for int)': ({'num_steps': '100'},
                                 "config.num_steps='100': must be an integer >= 1"),
    'wrong type (float for int)': ({'render.resolution': 32.5},
                                   'config.render.resolution=32.5: must be an integer >= 1'),
    'wrong type (int for bool)': ({'ablation.shading': 1},
                                  'config.ablation.shading=1: must be True or False'),
    'wrong type (int for tuple)': ({'toy.objects': 3},
                                   'config.toy.objects=3: must be a non-empty tuple'),
    'zero steps': ({'num_steps': 0}, 'config.num_steps=0: must be an integer >= 1'),
    'negative steps': ({'num_steps': -5}, 'config.num_steps=-5: must be an integer >= 1'),
    'zero resolution': ({'render.resolution': 0},
                        'config.render.resolution=0: must be an integer >= 1'),
    'zero preview resolution': ({'log.preview_resolution': 0},
                                'config.log.preview_resolution=0: must be an integer >= 1'),
    'negative guidance scale': ({'guidance.scale': -1.0},
                                'config.guidance.scale=-1.0: must be a number >= 0'),
    'nan guidance scale': ({'guidance.scale': float('nan')},
                           'config.guidance.scale=nan: must be a number >= 0'),
    'unknown view_mode': ({'prompts.view_mode': 'sideways'},
                          "config.prompts.view_mode='sideways': must be one of 'discrete', "
                          "'interpolated', 'none', 'fine'"),
    'unknown negatives': ({'prompts.negatives': 'perpneg'},
                          "config.prompts.negatives='perpneg': must be one of 'none', 'views', "
                          "'perp_neg'"),
    'negative Perp-Neg weight': ({'prompts.neg_back_front': -1.0},
                                 'config.prompts.neg_back_front=-1.0: must be a number >= 0'),
    'oblique band above overhead': ({'prompts.view_mode': 'fine', 'prompts.oblique_deg': 70.0},
                                    'config.prompts.oblique_deg=70.0: must be <= '
                                    'config.prompts.overhead_deg=60.0'),
    'unknown weighting': ({'guidance.weighting': 'sigma'},
                          "config.guidance.weighting='sigma': must be one of 'sigma2', "
                          "'uniform'"),
    'unknown optimizer': ({'optimizer.name': 'sgd'},
                          "config.optimizer.name='sgd': must be one of 'shampoo', 'adam'"),
    'unknown guidance': ({'guidance.name': 'imagen'},
                         "config.guidance.name='imagen': must be one of 'empirical', "
                         "'stable_diffusion'"),
    'empty prompt': ({'prompt': ''}, "config.prompt='': must be a non-empty string"),
    'blank prompt': ({'prompt': '   '}, "config.prompt='   ': must be a non-empty string"),
    'missing model': ({'guidance.name': 'stable_diffusion', 'guidance.stable_diffusion.model': ''},
                      "config.guidance.stable_diffusion.model='': must name the Stable Diffusion "
                      'weights'),
    'reversed t_range': ({'guidance.t_range': (0.9, 0.1)},
                         'config.guidance.t_range=(0.9, 0.1): must be a pair (lo, hi) of '
                         'numbers with lo < hi, each in [0, 1]'),
    'probability over 1': ({'camera.uniform_angle_prob': 1.5},
                           'config.camera.uniform_angle_prob=1.5: must be a number in [0, 1]'),
    'unknown background': ({'field.background': 'black'},
                           "config.field.background='black': must be one of 'mlp', 'white'"),
    'prompt the toy prior lacks': ({'prompt': 'a blue cone'},
                                   "config.prompt='a blue cone': must be one of "
                                   'config.toy.objects'),
    'held-out camera outside training': ({'camera.distance_range': (1.5, 1.5)},
                                          'config.toy.eval_distance=1.3: must be within '
                                          'config.camera.distance_range=(1.5, 1.5)'),
    'nan_step below -1': ({'debug.nan_step': -2},
                          'config.debug.nan_step=-2: must be an integer >= -1'),
}


@pytest.mark.parametrize('case', list(BAD))
def test_bad_field_is_one_message_naming_it_and_what_it_allows(case):
  changes, message = BAD[case]
  with pytest.raises(SetupError) as raised:
    config_check.check(toy_with(changes))
  assert str(raised.value).startswith(message)
  assert len(str(raised.value).splitlines()) == 1


def test_missing_field_is_named():
  with pytest.raises(SetupError, match=r'config\.render\.near: missing'):
    config_check.check(toy_with(remove=['render.near']))


def test_every_bad_field_is_listed():
  with pytest.raises(SetupError) as raised:
    config_check.check(toy_with({'num_steps': 0, 'guidance.scale': -1.0, 'prompt': ''}))
  assert len(str(raised.value).splitlines()) == 3


def test_shipped_configs_pass():
  config_check.check(toy.get_config())
  hamburger = pytest.importorskip('configs.hamburger')
  config_check.check(hamburger.get_config())


def test_every_field_has_a_rule():
  fields = set(config_check.leaves(defaults.get_config()))
  assert fields == set(config_check.RULES), (
      f'without a rule: {sorted(fields - set(config_check.RULES))}; '
      f'rules of no field: {sorted(set(config_check.RULES) - fields)}')


def test_every_default_passes_its_rule():
  for path, value in config_check.leaves(defaults.get_config()).items():
    assert config_check.RULES[path].ok(value), path


def test_name_lists_match_their_modules():
  assert config_check.VIEW_MODES == tuple(prompts._WEIGHT_RULES) == prompts.VIEW_MODES
  assert config_check.NEGATIVES == prompts.NEGATIVES
  for name in config_check.IPE_COVARIANCES:
    field.ipe_variance(0.1, name)
  config = defaults.get_config()
  for name in config_check.ORIENTATION_INTERPS:
    config.schedule.orientation_interp = name
    schedules.orientation_weight(0, config)
  for name in config_check.BACKGROUNDS:
    module = field.BackgroundMLP(kind=name)
    module.init(jax.random.PRNGKey(0), jax.numpy.zeros((1, 3)))
  with pytest.raises(ValueError):
    field.ipe_variance(0.1, 'bogus')
  stable_diffusion = pytest.importorskip('dreamfusion_jax.guidance.stable_diffusion')
  assert config_check.GUIDANCE_DTYPES == tuple(stable_diffusion.DTYPES)


def test_differences_ignore_only_what_is_asked():
  old = {'num_steps': 4, 'log': {'every': 1}, 'camera': {'range': [0.0, 1.0]}}
  new = {'num_steps': 8, 'log': {'every': 2}, 'camera': {'range': [0.0, 1.0]}, 'seed': 1}
  assert config_check.differences(old, new, ignore=('num_steps',)) == [
      ('log.every', 1, 2), ('seed', '<absent>', 1)]
  assert config_check.differences(old, old) == []


# Through run_train.py: exit code 2, one 'error:' line, no traceback. One case per kind.
CLI = {
    'unknown field': (['--config.nonexistent=1'], 'config.nonexistent: unknown field'),
    'unknown nested field': (['--config.render.resolutoin=32'],
                             'config.render.resolutoin: unknown field; did you mean '
                             'config.render.resolution?'),
    'wrong type': (['--config.num_steps=abc'],
                   'config.num_steps=abc: must be an integer >= 1 (invalid literal'),
    'wrong type (tuple)': (['--config.toy.objects=3'], 'config.toy.objects=(3,): must be a '
                                                       'non-empty tuple'),
    'a group set to a value': (['--config.render=3'], 'config.render=3: a group of fields'),
    'zero steps': (['--config.num_steps=0'], 'config.num_steps=0: must be an integer >= 1'),
    'negative resolution': (['--config.render.resolution=-4'],
                            'config.render.resolution=-4: must be an integer >= 1'),
    'negative guidance scale': (['--config.guidance.scale=-1'],
                                'config.guidance.scale=-1.0: must be a number >= 0'),
    'unknown view_mode': (['--config.prompts.view_mode=sideways'],
                          "config.prompts.view_mode='sideways': must be one of"),
    'unknown weighting': (['--config.guidance.weighting=sigma'],
                          "config.guidance.weighting='sigma': must be one of"),
    'unknown optimizer': (['--config.optimizer.name=sgd'],
                          "config.optimizer.name='sgd': must be one of"),
    'unknown guidance': (['--config.guidance.name=imagen'],
                         "config.guidance.name='imagen': must be one of"),
    'empty prompt': (['--config.prompt='], "config.prompt='': must be a non-empty string"),
    'missing model': (['--config.guidance.name=stable_diffusion'],
                      "config.guidance.stable_diffusion.model='': must name the Stable Diffusion "
                      'weights'),
    'missing config file': (['--config=configs/nope.py'],
                            "--config=configs/nope.py: could not load it: [Errno 2] No such "
                            'file or directory'),
}


def run_train(*args, workdir):
  # Later flags win: a case's --config=... replaces configs/toy.py.
  return helpers.run_train(*args, workdir=workdir, timeout=300,
                           env=dict(os.environ, JAX_PLATFORMS='cpu'))


def assert_refused(proc, message):
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
  assert len(errors) == 1 and errors[0].startswith('error: ' + message), proc.stderr[-2000:]


@pytest.mark.parametrize('case', list(CLI))
def test_run_train_refuses_bad_input_with_exit_2(case, tmp_path):
  args, message = CLI[case]
  assert_refused(run_train(*args, workdir=tmp_path / 'work'), message)
  assert not os.path.exists(tmp_path / 'work' / 'checkpoints')


def test_run_train_refuses_an_unwritable_workdir(tmp_path):
  (tmp_path / 'a_file').write_text('')
  workdir = tmp_path / 'a_file' / 'work'
  assert_refused(run_train(workdir=workdir),
                 f'--workdir={workdir}: cannot write there (Not a directory)')


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only directories')
def test_run_train_refuses_a_read_only_workdir(tmp_path):
  workdir = tmp_path / 'work'
  workdir.mkdir(mode=0o500)
  assert_refused(run_train(workdir=workdir), f'--workdir={workdir}: cannot write there')


def test_run_train_refuses_a_missing_workdir_flag():
  proc = helpers.run_train(workdir=None, timeout=300)
  assert_refused(proc, 'flag --workdir=None: Flag --workdir must have a value other than None')

"""Configs: every field commented, the paper's defaults, overrides from the command line."""
import os
import re

from absl import flags
from ml_collections import config_flags

from configs import cpu
from dreamfusion_jax import defaults
from tests.helpers import ROOT


def test_every_schema_field_has_a_comment():
  lines = open(os.path.join(ROOT, 'dreamfusion_jax', 'defaults.py')).read().splitlines()
  uncommented = []
  for i, line in enumerate(lines):
    m = re.match(r'\s*c\.([\w.]+) = (.*)', line)
    if not m or 'ConfigDict()' in m.group(2):
      continue
    if '#' not in line and not lines[i - 1].strip().startswith('#'):
      uncommented.append(m.group(1))
  assert not uncommented, f'fields without a comment: {uncommented}'


def test_paper_defaults():
  c = defaults.get_config()
  assert c.num_steps == 15_000 and c.render.resolution == 64
  assert c.guidance.scale == 100.0 and c.guidance.weighting == 'sigma2'
  assert tuple(c.guidance.t_range) == (0.02, 0.98)
  assert tuple(c.camera.elevation_range_deg) == (-10.0, 90.0)
  assert tuple(c.camera.distance_range) == (1.0, 1.5)
  assert tuple(c.camera.focal_mult_range) == (0.7, 1.35)
  assert c.field.num_freqs == 8 and c.field.num_blocks == 5 and c.field.width == 128
  assert c.render.bound_radius == 1.4
  assert c.optimizer.shampoo.block_size == 128 and c.optimizer.shampoo.exponent_override == 2
  assert c.loss.opacity_weight == 1e-3


def test_command_line_overrides():
  argv = [
      'prog', f"--config={os.path.join(ROOT, 'configs', 'cpu.py')}",
      '--config.guidance.scale=50', '--config.prompts.view_mode=none',
      '--config.ablation.textureless=False', '--config.ablation.shading=False',
      '--config.render.batch_size=4', '--config.optimizer.name=adam',
      '--config.schedule.lambda_sigma_steps=123', "--config.prompt=a blue cone",
      '--config.camera.distance_range=(1.2,1.4)',
  ]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config file', flag_values=flag_values,
                                  sys_argv=argv)
  flag_values(argv)
  c = flag_values.config
  assert c.guidance.scale == 50.0 and c.prompts.view_mode == 'none'
  assert c.ablation.textureless is False and c.ablation.shading is False
  assert c.render.batch_size == 4 and c.optimizer.name == 'adam'
  assert c.schedule.lambda_sigma_steps == 123 and c.prompt == 'a blue cone'
  assert tuple(c.camera.distance_range) == (1.2, 1.4)
  assert c.render.resolution == cpu.get_config().render.resolution  # the rest is cpu.py's


def parse(config_file, *overrides):
  argv = ['prog', f"--config={os.path.join(ROOT, 'configs', config_file)}", *overrides]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config file', flag_values=flag_values,
                                  sys_argv=argv)
  flag_values(argv)
  return flag_values.config


def test_hamburger_weights_follow_the_resolution_on_the_command_line():
  """hamburger.py's three regularizer weights are threestudio's per-ray values over R^2 rays:
  a resolution override rescales them by (64 / R)^2; a weight's own override replaces its tie."""
  rays = lambda r: float(r * r)
  for r in (64, 32, 96):
    c = parse('hamburger.py', f'--config.render.resolution={r}')
    assert c.render.resolution == r
    assert c.loss.opacity_weight == 1.0 / rays(r)
    assert c.schedule.orientation_start == 10.0 / rays(r)
    assert c.schedule.orientation_end == 1000.0 / rays(r)
  c = parse('hamburger.py', '--config.render.resolution=32', '--config.loss.opacity_weight=1e-3')
  assert c.loss.opacity_weight == 1e-3 and c.schedule.orientation_start == 10.0 / rays(32)
  assert c.copy_and_resolve_references().loss.opacity_weight == 1e-3

"""The one place a guidance.name becomes what a run needs of its prior.

  NAMES                    the backends config.guidance.name may name
  build_guidance(config)   the frozen prior (guidance/__init__.py's interface)
  make_evaluate(config)    (model, params, step) -> the metrics metrics.json reports: the toy
                           world's against its known object, none for Stable Diffusion
  config_problems(config)  the backend's own config rules, as config_check's problem lines

Everything below this module (runner.py, guidance/, config_check.py) names no backend: each
backend's code is imported here, when its name is asked for, so a Stable Diffusion run never
imports the toy world and a toy run never imports diffusers.
"""
from typing import Callable, Dict, List

from dreamfusion_jax.errors import SetupError

NAMES = ('empirical', 'stable_diffusion')


def _unknown(name) -> SetupError:
  return SetupError(f'guidance.name={name!r} is not a guidance backend; allowed: {NAMES}')


def build_guidance(config):
  """The backend named by config.guidance.name, built from the config (loads weights or builds
  the toy dataset: slow)."""
  name = config.guidance.name
  if name == 'empirical':
    from dreamfusion_jax import toy
    return toy.build_guidance(config)
  if name == 'stable_diffusion':
    try:
      from dreamfusion_jax.guidance import stable_diffusion
    except ImportError as e:
      raise SetupError('guidance.name=stable_diffusion: the Stable Diffusion backend is not '
                       f'part of this build yet ({e})') from e
    return stable_diffusion.from_config(config)
  raise _unknown(name)


def make_evaluate(config) -> Callable[..., Dict]:
  """The metrics a run of this backend reports: the toy world's (toy.make_evaluate) against the
  known object; none for a prior without a known answer."""
  if config.guidance.name == 'empirical':
    from dreamfusion_jax import toy
    return toy.make_evaluate(config)
  return lambda model, params, step: {}


def config_problems(config, show: Callable = repr) -> List[str]:
  """The backend's rules between config fields, each a 'config.FIELD=VALUE: must ...' line
  (show formats values as config_check does)."""
  c, problems = config, []
  if c.guidance.name == 'stable_diffusion' and not c.guidance.stable_diffusion.model.strip():
    problems.append("config.guidance.stable_diffusion.model='': must name the Stable Diffusion "
                    "weights when guidance.name='stable_diffusion': a hub id or a local "
                    'diffusers-format directory (configs/hamburger.py sets one)')
  if c.guidance.name == 'empirical':
    from dreamfusion_jax import toy
    problems += toy.config_problems(c, show)
  return problems

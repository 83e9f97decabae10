"""The toy world's own config rules: what config_check cannot tell from one field alone."""
from typing import Callable, List

from dreamfusion_jax.toy import scenes


def config_problems(config, show: Callable = repr) -> List[str]:
  """The rules between the toy world's fields, the prompt and the cameras, each a
  'config.FIELD=VALUE: must ...' line (show formats values as config_check does)."""
  return object_problems(config, show) + camera_problems(config, show)


def object_problems(config, show: Callable = repr) -> List[str]:
  """toy.objects must be library objects, and the prompt one of them."""
  c = config
  unknown = [n for n in c.toy.objects if n not in scenes.LIBRARY]
  if unknown:
    return [f'config.toy.objects={show(c.toy.objects)}: must be objects of the toy library '
            f'{scenes.names()} (unknown: {unknown})']
  if c.prompt not in c.toy.objects:
    return [f'config.prompt={c.prompt!r}: must be one of config.toy.objects '
            f'{show(c.toy.objects)} (the empirical prior knows only its objects)']
  return []


def camera_problems(config, show: Callable = repr) -> List[str]:
  """The held-out cameras (toy.eval_*) must lie in the training ranges (camera.*_range)."""
  c, problems = config, []
  # Held-out views from the training distribution: a camera the prior never saw is no test.
  for field, camera_field in (('eval_distance', 'distance_range'),
                              ('eval_focal_mult', 'focal_mult_range')):
    lo, hi = (float(v) for v in c.camera[camera_field])
    if not lo <= c.toy[field] <= hi:
      problems.append(f'config.toy.{field}={show(c.toy[field])}: must be within '
                      f'config.camera.{camera_field}={show(c.camera[camera_field])} (the '
                      'held-out cameras are drawn from the training distribution)')
  return problems

"""The toy world's own config rules: what config_check cannot tell from one field alone."""
from typing import Callable, List

from dreamfusion_jax.toy import scenes


def config_problems(config, show: Callable = repr) -> List[str]:
  """The rules between the toy world's fields and the prompt, each a 'config.FIELD=VALUE: must
  ...' line (show formats values as config_check does)."""
  c = config
  unknown = [n for n in c.toy.objects if n not in scenes.LIBRARY]
  if unknown:
    return [f'config.toy.objects={show(c.toy.objects)}: must be objects of the toy library '
            f'{scenes.names()} (unknown: {unknown})']
  if c.prompt not in c.toy.objects:
    return [f'config.prompt={c.prompt!r}: must be one of config.toy.objects '
            f'{show(c.toy.objects)} (the empirical prior knows only its objects)']
  return []

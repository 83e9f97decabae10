"""Checks a resolved config before anything is built: every field, one line per bad field.

  check(config, reference)       SetupError naming each bad field and what it allows
  differences(old, new, ignore)  the fields two configs disagree on (reusing a workdir)
  explain_flag_error(argv, e)    the same kind of message for a command line absl rejected

The reference is dreamfusion_jax/defaults.py (reference()): it has every field, so a field it lacks is a typo
and a field of another type is a mistake. On top of the type, RULES gives each field its allowed
values, and cross_field_problems() the few constraints between fields. All functions are pure;
run_train.py prints the SetupError's message and exits with code 2.
"""
import difflib
import math
import re
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from absl import flags

from dreamfusion_jax import defaults
from dreamfusion_jax.errors import SetupError

# Allowed names. Those with a public constant in their module come from it; the rest are the
# strings their module accepts (tests/test_config_check.py checks each list against its module).
GUIDANCE_DTYPES = ('float32', 'bfloat16')  # guidance/stable_diffusion.py DTYPES
VIEW_MODES = ('discrete', 'interpolated', 'none', 'fine')  # prompts.VIEW_MODES
NEGATIVES = ('none', 'views', 'perp_neg')  # prompts.NEGATIVES
IPE_COVARIANCES = ('lambda', 'lambda_squared')  # field.ipe_variance
BACKGROUNDS = ('mlp', 'white', 'random')  # field.BackgroundMLP
ORIENTATION_INTERPS = ('linear', 'log')  # schedules.orientation_weight
TOY_IMAGE_SHADINGS = ('albedo', 'mix')  # toy/dataset.py _draws


class Rule(NamedTuple):
  """A field's allowed values: `ok(value)`, and `allowed`, the words a person reads."""
  allowed: str
  ok: Callable[[Any], bool]


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(low: int) -> Rule:
  return Rule(f'an integer >= {low}', lambda v: _is_int(v) and v >= low)


def number(low: Optional[float] = None, high: Optional[float] = None, open_low: bool = False,
           open_high: bool = False) -> Rule:
  """A finite number in [low, high] (an open end with open_low / open_high)."""
  if low is not None and high is not None:
    words = f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
  elif low is not None:
    words = f"a number {'>' if open_low else '>='} {low:g}"
  else:
    words = 'a finite number'

  def ok(v):
    return (_is_number(v) and (low is None or (v > low if open_low else v >= low))
            and (high is None or (v < high if open_high else v <= high)))

  return Rule(words, ok)


def one_of(names: Sequence[str]) -> Rule:
  return Rule('one of ' + ', '.join(repr(n) for n in names), lambda v: v in tuple(names))


def pair(low: Optional[float] = None, high: Optional[float] = None, strict: bool = False,
         open_low: bool = False) -> Rule:
  """(lo, hi), two numbers with lo <= hi (lo < hi if strict), both within [low, high]."""
  within = number(low, high, open_low=open_low)
  order = '<' if strict else '<='
  words = f'a pair (lo, hi) of numbers with lo {order} hi'
  if low is not None or high is not None:
    words += ', each ' + within.allowed[len('a number '):]

  def ok(v):
    return (isinstance(v, (tuple, list)) and len(v) == 2 and all(within.ok(x) for x in v)
            and (v[0] < v[1] if strict else v[0] <= v[1]))

  return Rule(words, ok)


BOOL = Rule('True or False', lambda v: isinstance(v, bool))
TEXT = Rule('a string', lambda v: isinstance(v, str))
NON_EMPTY_TEXT = Rule('a non-empty string', lambda v: isinstance(v, str) and bool(v.strip()))
NAMES = Rule('a non-empty tuple of non-empty strings',
             lambda v: isinstance(v, (tuple, list)) and len(v) > 0
             and all(isinstance(x, str) and x.strip() for x in v))
PROBABILITY = number(0.0, 1.0)
GREY_LEVELS = Rule('a non-empty tuple of grey levels in [0, 1]',
                   lambda v: isinstance(v, (tuple, list)) and len(v) > 0
                   and all(_is_number(x) and 0.0 <= x <= 1.0 for x in v))
DECAY = number(0.0, 1.0, open_high=True)  # A moving-average decay.
COUNT = integer(0)
POSITIVE_INT = integer(1)
NON_NEGATIVE = number(0.0)
POSITIVE = number(0.0, open_low=True)
FINITE = number()


def _rules() -> Dict[str, Rule]:
  from dreamfusion_jax import backends, optim, sds
  return {
      'seed': COUNT,
      'num_steps': POSITIVE_INT,
      'prompt': NON_EMPTY_TEXT,
      'negative_prompt': TEXT,
      'camera.elevation_range_deg': pair(-90.0, 90.0),
      'camera.uniform_angle_prob': PROBABILITY,
      'camera.azimuth_range_deg': pair(),
      'camera.distance_range': pair(0.0, open_low=True),
      'camera.position_jitter': NON_NEGATIVE,
      'camera.lookat_std': NON_NEGATIVE,
      'camera.up_std': NON_NEGATIVE,
      'camera.focal_mult_range': pair(0.0, open_low=True),
      'light.direction_std': NON_NEGATIVE,
      'light.distance_range': pair(0.0, open_low=True),
      'light.ambient': NON_NEGATIVE,
      'light.diffuse': NON_NEGATIVE,
      'shading.albedo_only_steps': COUNT,
      'shading.albedo_prob': PROBABILITY,
      'shading.textureless_prob': PROBABILITY,
      'ablation.shading': BOOL,
      'ablation.textureless': BOOL,
      'prompts.view_mode': one_of(VIEW_MODES),
      'prompts.overhead_deg': number(-90.0, 90.0),
      'prompts.front_deg': number(0.0, 180.0),
      'prompts.back_deg': number(0.0, 180.0),
      'prompts.oblique_deg': number(-90.0, 90.0),
      'prompts.negatives': one_of(NEGATIVES),
      'prompts.neg_front_side': NON_NEGATIVE,
      'prompts.neg_side_front': NON_NEGATIVE,
      'prompts.neg_back_front': NON_NEGATIVE,
      'prompts.neg_back_side': NON_NEGATIVE,
      'prompts.neg_side_opposite': NON_NEGATIVE,
      'field.num_freqs': POSITIVE_INT,
      'field.ipe_covariance': one_of(IPE_COVARIANCES),
      'field.num_blocks': POSITIVE_INT,
      'field.width': POSITIVE_INT,
      'field.density_bias_scale': FINITE,
      'field.density_bias_std': POSITIVE,
      'field.density_offset': FINITE,
      'field.max_log_density': FINITE,
      'field.background': one_of(BACKGROUNDS),
      'field.bg_num_freqs': COUNT,
      'field.bg_width': POSITIVE_INT,
      'field.bg_num_layers': POSITIVE_INT,
      'render.resolution': POSITIVE_INT,
      'render.batch_size': POSITIVE_INT,
      'render.bound_radius': POSITIVE,
      'render.near': NON_NEGATIVE,
      'render.num_samples': POSITIVE_INT,
      'render.num_importance_samples': COUNT,
      'schedule.lambda_sigma_start': NON_NEGATIVE,
      'schedule.lambda_sigma_end': NON_NEGATIVE,
      'schedule.lambda_sigma_steps': COUNT,
      'schedule.orientation_start': NON_NEGATIVE,
      'schedule.orientation_end': NON_NEGATIVE,
      'schedule.orientation_steps': COUNT,
      'schedule.orientation_interp': one_of(ORIENTATION_INTERPS),
      'loss.opacity_weight': NON_NEGATIVE,
      'loss.opacity_eps': POSITIVE,
      'guidance.name': one_of(backends.NAMES),
      'guidance.stable_diffusion.model': TEXT,
      'guidance.stable_diffusion.revision': NON_EMPTY_TEXT,
      'guidance.stable_diffusion.dtype': one_of(GUIDANCE_DTYPES),
      'guidance.stable_diffusion.vae_resolution': POSITIVE_INT,
      'guidance.scale': NON_NEGATIVE,
      'guidance.weighting': one_of(sds.WEIGHTINGS),
      'guidance.t_range': pair(0.0, 1.0, strict=True),
      'optimizer.name': one_of(optim.OPTIMIZERS),
      'optimizer.lr_init': NON_NEGATIVE,
      'optimizer.lr_peak': NON_NEGATIVE,
      'optimizer.lr_final': NON_NEGATIVE,
      'optimizer.warmup_steps': COUNT,
      'optimizer.decay_end_step': COUNT,
      'optimizer.shampoo.block_size': POSITIVE_INT,
      'optimizer.shampoo.beta1': DECAY,
      'optimizer.shampoo.beta2': PROBABILITY,
      'optimizer.shampoo.exponent_override': COUNT,
      'optimizer.shampoo.matrix_epsilon': NON_NEGATIVE,
      'optimizer.shampoo.nesterov': BOOL,
      'optimizer.shampoo.start_preconditioning_step': COUNT,
      'optimizer.adam.b1': DECAY,
      'optimizer.adam.b2': DECAY,
      'optimizer.adam.eps': NON_NEGATIVE,
      'toy.objects': NAMES,
      'toy.images_per_object': POSITIVE_INT,
      'toy.backgrounds': GREY_LEVELS,
      'toy.image_shading': one_of(TOY_IMAGE_SHADINGS),
      'toy.caption_noise': PROBABILITY,
      'toy.dataset_seed': COUNT,
      'toy.sharpness': POSITIVE,
      'toy.cache_dir': NON_EMPTY_TEXT,
      'toy.eval_distance': POSITIVE,
      'toy.eval_focal_mult': POSITIVE,
      'log.every': POSITIVE_INT,
      'log.preview_every': POSITIVE_INT,
      'log.preview_resolution': POSITIVE_INT,
      'log.eval_every': COUNT,
      'log.checkpoint_every': POSITIVE_INT,
      'log.max_checkpoints': POSITIVE_INT,
      'debug.nan_step': integer(-1),
  }


RULES = _rules()


def reference():
  """The schema's config (dreamfusion_jax/defaults.py): every field, with its type."""
  return defaults.get_config()


def leaves(tree, prefix: str = '') -> Dict[str, Any]:
  """{'render.resolution': 64, ...}: the leaves of a ConfigDict or nested dict by dotted path."""
  out = {}
  for key, value in tree.items():
    path = prefix + key
    if hasattr(value, 'items'):
      out.update(leaves(value, path + '.'))
    else:
      out[path] = value
  return out


def _groups(tree, prefix: str = '') -> List[str]:
  """Dotted paths of the sub-ConfigDicts ('camera', 'optimizer.shampoo', ...)."""
  out = []
  for key, value in tree.items():
    if hasattr(value, 'items'):
      out += [prefix + key] + _groups(value, prefix + key + '.')
  return out


def show(value) -> str:
  return repr(tuple(value)) if isinstance(value, list) else repr(value)


def unknown_field(path: str, ref) -> str:
  """'config.PATH: unknown field; did you mean ...?' with the fields of the nearest group."""
  close = difflib.get_close_matches(path, list(leaves(ref)) + _groups(ref), n=1, cutoff=0.6)
  hint = f'; did you mean config.{close[0]}?' if close else ''
  group, where = ref, 'config'
  for key in path.split('.')[:-1]:
    if not hasattr(group.get(key), 'items'):
      break
    group, where = group[key], f'{where}.{key}'
  return f"config.{path}: unknown field{hint} (fields of {where}: {', '.join(sorted(group))})"


def structure_problems(config, ref) -> List[str]:
  """Fields the config has and the reference lacks, and the reverse."""
  have, known, ref_groups = leaves(config), leaves(ref), set(_groups(ref))
  problems, replaced = [], []
  for path, value in have.items():
    if path in ref_groups:
      replaced.append(path + '.')
      problems.append(f'config.{path}={show(value)}: a group of fields, not a value; set one of '
                      f'its fields (config.{path}.*)')
    elif path not in known:
      problems.append(unknown_field(path, ref))
  problems += [f'config.{p}: missing (every config starts from dreamfusion_jax/defaults.py, which has it)'
               for p in known if p not in have and not p.startswith(tuple(replaced))]
  return problems


def _same_kind(value, ref_value) -> bool:
  """The type check for a field without a rule: the reference's type (ints pass for floats)."""
  if isinstance(ref_value, bool) or isinstance(value, bool):
    return isinstance(value, bool) and isinstance(ref_value, bool)
  if isinstance(ref_value, float):
    return _is_number(value)
  if isinstance(ref_value, (tuple, list)):
    return isinstance(value, (tuple, list))
  return isinstance(value, type(ref_value))


def value_problems(config, ref) -> List[str]:
  """Each known field checked against its rule (or, without one, the reference's type)."""
  problems = []
  known = leaves(ref)
  for path, value in leaves(config).items():
    if path not in known:
      continue
    rule = RULES.get(path)
    if rule is not None and not rule.ok(value):
      problems.append(f'config.{path}={show(value)}: must be {rule.allowed}')
    elif rule is None and not _same_kind(value, known[path]):
      problems.append(f'config.{path}={show(value)}: must be a {type(known[path]).__name__} '
                      f'like the default {show(known[path])}')
  return problems


def cross_field_problems(config) -> List[str]:
  """Constraints between fields (only once each field is valid on its own)."""
  from dreamfusion_jax import backends
  c, problems = config, backends.config_problems(config, show)  # The prior's own rules first.
  if c.render.near >= c.render.bound_radius:
    problems.append(f'config.render.near={c.render.near!r}: must be less than '
                    f'config.render.bound_radius={c.render.bound_radius!r}')
  if c.prompts.front_deg > c.prompts.back_deg:
    problems.append(f'config.prompts.front_deg={c.prompts.front_deg!r}: must be <= '
                    f'config.prompts.back_deg={c.prompts.back_deg!r}')
  if c.prompts.view_mode == 'fine' and c.prompts.oblique_deg > c.prompts.overhead_deg:
    problems.append(f'config.prompts.oblique_deg={c.prompts.oblique_deg!r}: must be <= '
                    f'config.prompts.overhead_deg={c.prompts.overhead_deg!r} (the oblique-top '
                    "band lies below overhead in view_mode='fine')")
  s = c.schedule
  if s.orientation_interp == 'log' and min(s.orientation_start, s.orientation_end) <= 0:
    problems.append(f"config.schedule.orientation_interp='log': needs orientation_start and "
                    f'orientation_end > 0 (got {s.orientation_start!r}, {s.orientation_end!r})')
  o = c.optimizer
  if o.decay_end_step < o.warmup_steps:
    problems.append(f'config.optimizer.decay_end_step={o.decay_end_step!r}: must be >= '
                    f'config.optimizer.warmup_steps={o.warmup_steps!r}')
  return problems


def problems(config, ref) -> List[str]:
  """Every problem of the config, one line each; [] for a good config."""
  found = structure_problems(config, ref) + value_problems(config, ref)
  return found or cross_field_problems(config)


def check(config, ref=None) -> None:
  """Raises SetupError listing every bad field, each with what it allows."""
  found = problems(config, reference() if ref is None else ref)
  if found:
    raise SetupError('\n'.join(found))


def differences(old: Dict, new: Dict, ignore: Sequence[str] = ()) -> List[Tuple[str, Any, Any]]:
  """(path, old value, new value) of each leaf that differs between two nested dicts (JSON form:
  tuples as lists), skipping the paths in `ignore`; a side without the leaf shows '<absent>'."""
  a, b = leaves(old), leaves(new)
  absent = '<absent>'
  return [(p, a.get(p, absent), b.get(p, absent)) for p in sorted(set(a) | set(b))
          if p not in ignore and a.get(p, absent) != b.get(p, absent)]


_FLAG_ERROR = re.compile(r'flag --config\.([\w.]+)=(.*?): (.*)', re.DOTALL)
_CONFIG_FILE_ERROR = re.compile(r'flag --config=(.*?): Error whilst parsing config file', re.DOTALL)


def explain_config_file_error(path: str, error: BaseException) -> str:
  """One line for a --config file that does not load: a missing get_config(), or the error its
  import or get_config() raised (the last line of the traceback ml_collections embeds)."""
  text = str(error.__cause__ or error)
  if "has no attribute 'get_config'" in text:
    return f'--config={path}: the file has no get_config() function returning a ConfigDict'
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if len(lines) > 1:  # A traceback in the text: its last line is the error.
    return f'--config={path}: could not load it: {lines[-1]}'
  return f'--config={path}: could not load it: {type(error.__cause__ or error).__name__}: {text}'


def explain_flag_error(argv: Sequence[str], error: Exception, ref) -> str:
  """One message for a command line that absl / ml_collections rejected while parsing.

  An override of a field the config lacks raises a bare KeyError; a value that does not parse
  as the field's type raises absl's flags.Error naming the flag. Both become the field, the
  value and what the field allows; any other error keeps absl's own words.
  """
  file_error = _CONFIG_FILE_ERROR.match(str(error))
  if file_error:
    return explain_config_file_error(file_error.group(1), error)
  known = leaves(ref)
  overrides = [a[len('--config.'):].partition('=')[0] for a in argv if a.startswith('--config.')]
  unknown = [p for p in overrides if p not in known and p not in _groups(ref)]
  if unknown:
    return '\n'.join(unknown_field(p, ref) for p in unknown)
  match = _FLAG_ERROR.match(str(error))
  if match:
    path, value, detail = match.groups()
    if path in _groups(ref):
      return (f'config.{path}={value}: a group of fields, not a value; set one of its fields '
              f'(config.{path}.*)')
    allowed = (RULES[path].allowed if path in RULES else
               f'a {type(known[path]).__name__}' if path in known else 'a value of its type')
    return f'config.{path}={value}: must be {allowed} ({detail.strip()})'
  if not isinstance(error, (KeyError, flags.Error)):  # Raised bare by the config file's import.
    paths = [a[len('--config='):] for a in argv if a.startswith('--config=')]
    return explain_config_file_error(paths[-1] if paths else '?', error)
  return str(error)

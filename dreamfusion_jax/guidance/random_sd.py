"""Stable Diffusion 2.1-base's architecture, full-size or tiny, with random weights.

The configs below copy stabilityai/stable-diffusion-2-1-base's unet/, vae/, text_encoder/,
tokenizer/ and scheduler/ configs (same block types, attention layout with linear projections,
OpenCLIP-H-style text encoder, scaled-linear epsilon scheduler). `tiny=True` keeps all of that
and shrinks only the widths and depths, so a test runs the real code path in seconds.

write_pipeline(path) saves such a pipeline with diffusers' and transformers' PyTorch classes and
save_pretrained (PyTorch weights only: loading it exercises the PyTorch -> Flax conversion); the
project then reads it with the same from_pretrained calls a user's run makes. random_backend()
builds the Flax modules directly (no files, no torch), for benchmarks of the full-size compute.
"""
import json
import os
from typing import Dict

import numpy as np

SCHEDULER = dict(  # scheduler/scheduler_config.json (PNDMScheduler in the original).
    beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear', num_train_timesteps=1000,
    prediction_type='epsilon', set_alpha_to_one=False, skip_prk_steps=True,
    steps_offset=1)


def unet_config(tiny: bool) -> Dict:
  """unet/config.json; attention_head_dim is diffusers' legacy name for the number of heads."""
  return dict(
      sample_size=8 if tiny else 64, in_channels=4, out_channels=4, layers_per_block=2,
      block_out_channels=(32, 32, 64, 64) if tiny else (320, 640, 1280, 1280),
      attention_head_dim=(2, 2, 4, 4) if tiny else (5, 10, 20, 20),
      cross_attention_dim=32 if tiny else 1024,
      down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',),
      up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3,
      use_linear_projection=True, flip_sin_to_cos=True, freq_shift=0)  # 32 norm groups.


def vae_config(tiny: bool) -> Dict:
  return dict(
      in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=32,
      block_out_channels=(32, 32, 64, 64) if tiny else (128, 256, 512, 512),
      layers_per_block=1 if tiny else 2, sample_size=64 if tiny else 512,
      down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4)


def text_config(tiny: bool, vocab_size: int) -> Dict:
  """OpenCLIP ViT-H/14's text tower as SD 2.x ships it (23 of 24 layers)."""
  return dict(
      vocab_size=vocab_size, hidden_size=32 if tiny else 1024,
      intermediate_size=64 if tiny else 4096, num_attention_heads=4 if tiny else 16,
      num_hidden_layers=2 if tiny else 23, projection_dim=32 if tiny else 512,
      max_position_embeddings=77, hidden_act='gelu', layer_norm_eps=1e-5)


def write_tokenizer(path: str) -> int:
  """A byte-level CLIP tokenizer with an empty merges list; returns its vocabulary size."""
  from transformers import CLIPTokenizer
  from transformers.models.clip.tokenization_clip import bytes_to_unicode
  chars = list(bytes_to_unicode().values())
  tokens = chars + [c + '</w>' for c in chars] + ['<|startoftext|>', '<|endoftext|>']
  os.makedirs(path, exist_ok=True)
  vocab_file, merges_file = os.path.join(path, 'vocab.json'), os.path.join(path, 'merges.txt')
  with open(vocab_file, 'w') as f:
    json.dump({t: i for i, t in enumerate(tokens)}, f)
  with open(merges_file, 'w') as f:
    f.write('#version: 0.2\n')
  CLIPTokenizer(vocab_file, merges_file, pad_token='!', model_max_length=77).save_pretrained(path)
  return len(tokens)


def write_pipeline(path: str, *, seed: int = 0, prediction_type: str = 'epsilon') -> str:
  """Writes a tiny random SD-2.1-base-family pipeline in diffusers' format; returns path."""
  import torch
  from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
  from transformers import CLIPTextConfig, CLIPTextModel
  torch.manual_seed(seed)
  vocab_size = write_tokenizer(os.path.join(path, 'tokenizer'))
  CLIPTextModel(CLIPTextConfig(**text_config(True, vocab_size))).save_pretrained(
      os.path.join(path, 'text_encoder'))
  UNet2DConditionModel(**unet_config(True)).save_pretrained(os.path.join(path, 'unet'))
  AutoencoderKL(**vae_config(True)).save_pretrained(os.path.join(path, 'vae'))
  PNDMScheduler(**dict(SCHEDULER, prediction_type=prediction_type)).save_pretrained(
      os.path.join(path, 'scheduler'))
  with open(os.path.join(path, 'model_index.json'), 'w') as f:
    json.dump({'_class_name': 'StableDiffusionPipeline', '_diffusers_version': '0.35.2',
               'scheduler': ['diffusers', 'PNDMScheduler'],
               'text_encoder': ['transformers', 'CLIPTextModel'],
               'tokenizer': ['transformers', 'CLIPTokenizer'],
               'unet': ['diffusers', 'UNet2DConditionModel'],
               'vae': ['diffusers', 'AutoencoderKL']}, f, indent=2)
  return path


def random_backend(*, tiny: bool, dtype: str = 'float32', resolution: int = 512, seed: int = 0,
                   tokenizer_dir: str):
  """A StableDiffusion backend with random Flax weights and no files (benchmarks).

  tokenizer_dir: where write_tokenizer may put its files.
  """
  import jax
  import jax.numpy as jnp
  from diffusers import FlaxAutoencoderKL, FlaxDDPMScheduler, FlaxUNet2DConditionModel
  from diffusers.schedulers.scheduling_utils_flax import CommonSchedulerState
  from transformers import CLIPTextConfig, CLIPTokenizer, FlaxCLIPTextModel

  from dreamfusion_jax.guidance import schedule as schedule_lib
  from dreamfusion_jax.guidance import stable_diffusion as sd
  jdtype = sd.DTYPES[dtype]
  vocab_size = write_tokenizer(tokenizer_dir)
  k_text, k_unet, k_vae = jax.random.split(jax.random.PRNGKey(seed), 3)
  text = FlaxCLIPTextModel(CLIPTextConfig(**text_config(tiny, vocab_size)), seed=int(seed))
  unet = FlaxUNet2DConditionModel(**unet_config(tiny), dtype=jdtype)
  vae = FlaxAutoencoderKL(**vae_config(tiny), dtype=jdtype)
  vae_params = jax.jit(vae.init_weights)(k_vae)  # jit: an eager init of a full UNet is slow.
  params = dict(unet=jax.jit(unet.init_weights)(k_unet),
                vae={k: vae_params[k] for k in sd._VAE_ENCODER_PARAMS})  # pylint: disable=protected-access
  params = jax.tree.map(lambda p: p.astype(jdtype), params)
  alphas_cumprod = CommonSchedulerState.create(
      FlaxDDPMScheduler.from_config(SCHEDULER)).alphas_cumprod
  del k_text
  return sd.StableDiffusion(
      tokenizer=CLIPTokenizer.from_pretrained(tokenizer_dir), text_encoder=text,
      text_params=text.params, unet=unet, vae=vae, params=params,
      schedule=schedule_lib.DiscreteSchedule(jnp.asarray(alphas_cumprod, jnp.float32)),
      prediction_type='epsilon', scaling_factor=0.18215, resolution=resolution, dtype=jdtype)


def to_numpy(x) -> np.ndarray:
  return np.asarray(x.detach().cpu().numpy() if hasattr(x, 'detach') else x)

"""The paper's headline run: "a DSLR photo of a delicious hamburger" with Stable Diffusion.

  python run_train.py --config=configs/hamburger.py --workdir=runs/hamburger

Everything but the prior is the paper's default (configs/base.py): 15,000 Shampoo steps at 64x64,
omega = 100, the shading schedule, view prompts, the orientation and opacity losses. The prior is
Stable Diffusion 2.1-base in place of Imagen, whose weights are not public; see the README for why
2.1-base and for the memory this needs. Point guidance.model at a local copy to run offline:

  python run_train.py --config=configs/hamburger.py --workdir=runs/hamburger \
      --config.guidance.model=models/sd21base --config.guidance.dtype=bfloat16
"""
from configs import base
from dreamfusion_jax.guidance import stable_diffusion


def get_config():
  c = base.get_config()
  c.prompt = 'a DSLR photo of a delicious hamburger'  # The prompt of the paper's Fig. 1 row.
  c.guidance.name = 'stable_diffusion'  # Latent diffusion through diffusers' Flax classes.
  # SD 2.1-base: 512x512, epsilon prediction, the default of the PyTorch ports (stable-dreamfusion,
  # threestudio), so results compare; a hub id or a local diffusers-format directory.
  c.guidance.model = stable_diffusion.DEFAULT_MODEL
  c.guidance.revision = 'main'  # Hub revision of guidance.model.
  c.guidance.dtype = 'float32'  # 'bfloat16' halves UNet/VAE memory on GPU/TPU.
  c.guidance.vae_resolution = 512  # SD 2.1-base's training resolution.
  return c

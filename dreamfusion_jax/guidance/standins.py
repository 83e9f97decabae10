"""A guidance stand-in for tests and benchmarks of the update: an exact Gaussian prior over the
config's prompts (no weights, no dataset)."""
import jax

from dreamfusion_jax import prompts
from dreamfusion_jax.guidance.gaussian import GaussianPrior


def gaussian_guidance(config, seed: int = 0) -> GaussianPrior:
  """A GaussianPrior whose vocabulary is the config's view prompts and negative prompt, each with
  its own random mean image at the render resolution."""
  vocabulary = prompts.view_prompts(config.prompt) + [config.negative_prompt]
  res = config.render.resolution
  means = jax.random.uniform(jax.random.PRNGKey(seed), (len(vocabulary), res, res, 3))
  return GaussianPrior(vocabulary, means, std=0.2)

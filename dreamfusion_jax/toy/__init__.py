"""The toy world: analytic objects, their captioned renders, the exact prior of those renders,
and the metrics that say whether SDS rebuilt the known object (design.md §5).

  scenes.py     the library of analytic objects (signed distances, colours, marks)
  dataset.py    build_dataset / build_guidance: the captioned renders and their prior
  empirical.py  EmpiricalPrior: the exact denoiser of a finite captioned image set
  metrics.py    make_evaluate / HEADLINE: scores at held-out views against the truth
  checks.py     config_problems: the toy world's rules between config fields
  sweep.py      many short toy runs in worker processes (benchmarks/, slow tests)

The names below are the package's interface (backends.py and the tests use them); the modules
hold the rest.
"""
from dreamfusion_jax.toy.checks import config_problems
from dreamfusion_jax.toy.dataset import build_dataset
from dreamfusion_jax.toy.dataset import build_guidance
from dreamfusion_jax.toy.dataset import dataset_path
from dreamfusion_jax.toy.dataset import noisy_rows
from dreamfusion_jax.toy.dataset import white_background
from dreamfusion_jax.toy.metrics import HEADLINE
from dreamfusion_jax.toy.metrics import MARK_PRESENT
from dreamfusion_jax.toy.metrics import MARK_TOLERANCE
from dreamfusion_jax.toy.metrics import headline_failures
from dreamfusion_jax.toy.metrics import held_out_cameras
from dreamfusion_jax.toy.metrics import make_evaluate
from dreamfusion_jax.toy.metrics import mark_colors
from dreamfusion_jax.toy.metrics import mark_fraction
from dreamfusion_jax.toy.metrics import marks_agree
from dreamfusion_jax.toy.metrics import psnr
from dreamfusion_jax.toy.metrics import saturation

__all__ = [
    'config_problems',
    'build_dataset',
    'build_guidance',
    'dataset_path',
    'noisy_rows',
    'white_background',
    'HEADLINE',
    'MARK_PRESENT',
    'MARK_TOLERANCE',
    'headline_failures',
    'held_out_cameras',
    'make_evaluate',
    'mark_colors',
    'mark_fraction',
    'marks_agree',
    'psnr',
    'saturation',
]

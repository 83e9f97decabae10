"""The paper's method as written, every field at its default (dreamfusion_jax/defaults.py: the
schema, with each field's comment and source).

  python run_train.py --config=configs/base.py --workdir=runs/base
"""
from dreamfusion_jax.defaults import get_config  # pylint: disable=unused-import

__all__ = ['get_config']

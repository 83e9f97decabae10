"""The optimizer's update direction, chosen by config.optimizer.name (paper A.2; paper.md §7).

The direction carries no learning rate and no sign: the update step applies
params - lr(step) * direction itself, with lr a function of the training step (schedules.py), so
a skipped (non-finite) step never shifts the schedule.
"""
import optax

from dreamfusion_jax import shampoo

OPTIMIZERS = ('shampoo', 'adam')


def direction(config) -> optax.GradientTransformation:
  """Distributed Shampoo with the paper's flags, or Adam."""
  o = config.optimizer
  if o.name == 'shampoo':
    s = o.shampoo
    return shampoo.scale_by_shampoo(
        block_size=s.block_size, beta1=s.beta1, beta2=s.beta2,
        exponent_override=s.exponent_override, matrix_epsilon=s.matrix_epsilon,
        nesterov=s.nesterov, start_preconditioning_step=s.start_preconditioning_step)
  if o.name == 'adam':
    return optax.scale_by_adam(b1=o.adam.b1, b2=o.adam.b2, eps=o.adam.eps)
  raise ValueError(f'optimizer.name must be one of {OPTIMIZERS}, got {o.name!r}')

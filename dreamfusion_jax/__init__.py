"""dreamfusion_jax: DreamFusion (Poole, Jain, Barron, Mildenhall, ICLR 2023) in JAX/Flax.

One step, from the paper's Fig. 8, through the modules:
  camera.py   sample a camera and a light (paper §3.2, A.2)
  render.py   render the NeRF (field.py, encoding.py) with diffuse shading (Eq. 5, 7)
  sds.py      score distillation against a guidance backend (guidance/), Eq. 3
  losses.py   orientation and opacity regularizers (§3.1, A.2)
  train.py    the one compiled, device-mapped update (schedules.py, optim.py, shampoo.py)
"""

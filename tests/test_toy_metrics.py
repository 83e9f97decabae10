"""The toy world's scores against values computed by hand (dreamfusion_jax/toy/metrics.py)."""
import numpy as np
import pytest

from dreamfusion_jax import toy
from dreamfusion_jax.toy import scenes
from dreamfusion_jax.toy import sweep as toy_sweep


def test_psnr_of_a_known_error_and_under_a_mask():
  truth = np.zeros((4, 4, 3))
  render = truth.copy()
  render[0, 0] = 0.5  # One pixel off by 0.5 in every channel: MSE 0.25 / 16 over the image.
  assert toy.psnr(render, truth) == pytest.approx(10 * np.log10(16 / 0.25))
  mask = np.zeros((4, 4), bool)
  mask[0, :2] = True  # Two pixels, one of them off: MSE 0.25 / 2.
  assert toy.psnr(render, truth, mask) == pytest.approx(10 * np.log10(2 / 0.25))
  assert toy.psnr(truth, truth) == pytest.approx(100.0)  # The 1e-10 floor, not inf.


@pytest.mark.parametrize('share, counted', [(1.0, True), (0.6, True), (0.4, False), (0.0, False)])
def test_mark_fraction_counts_pixels_that_are_mostly_mark(share, counted):
  """A pixel share * ketchup + (1 - share) * bun is mark-coloured when it is more than about
  half mark (the bun is 0.57 from the ketchup in its green channel)."""
  ketchup, bun = np.array(scenes.KETCHUP), np.array(scenes.BUN)
  image = np.ones((8, 8, 3))  # White: never mark-coloured.
  image[:2, :2] = share * ketchup + (1 - share) * bun
  assert toy.mark_fraction(image, ketchup) == pytest.approx(4 / 64 if counted else 0.0)


def test_no_other_hamburger_colour_counts_as_the_mark():
  for color in (scenes.BUN, scenes.PATTY, scenes.LETTUCE, scenes.PICKLE, (1.0, 1.0, 1.0)):
    image = np.broadcast_to(np.array(color), (4, 4, 3))
    assert toy.mark_fraction(image, scenes.KETCHUP) == 0.0, color


def test_saturation_of_known_colours():
  image = np.array([[[1.0, 0.0, 0.0], [0.5, 0.25, 0.25]], [[0.3, 0.3, 0.3], [0.0, 0.0, 0.0]]])
  mask = np.array([[True, True], [True, False]])
  assert toy.saturation(image, mask) == pytest.approx((1.0 + 0.5 + 0.0) / 3)
  assert toy.saturation(image, np.zeros((2, 2), bool)) == 0.0


def test_held_out_cameras_are_the_ring_and_the_front_at_two_elevations():
  cams = toy.held_out_cameras(None)
  assert cams[:8] == [(30.0, float(az)) for az in range(0, 360, 45)]
  assert cams[8:] == [(0.0, 0.0), (60.0, 0.0)]


def _evaluate(name, **field):
  """toy.make_evaluate's metrics of a fresh field for library object `name` (field overrides)."""
  import jax
  from configs import toy as toy_config
  from dreamfusion_jax import train
  config = toy_config.get_config()
  config.prompt = name
  config.field.update(field)
  model = train.build_model(config, guidance=None)
  params = train.init_state(model, jax.random.PRNGKey(0)).params
  return toy.make_evaluate(config)(model, params, 0)


def test_an_empty_field_fails_every_headline_metric():
  """Nothing at all (raw density -60: every pixel background) fails every headline target,
  although its whole-image PSNR against the white snowman beats the hamburger's 25 dB target."""
  m = _evaluate('snowman', density_offset=-60.0)
  assert m['iou'] == 0.0 and m['psnr_gain'] == 0.0 and m['psnr_fg_gain'] == 0.0
  assert [f.split()[0] for f in m['headline_failures']] == list(toy.HEADLINE)
  assert m['psnr'] > 25.0 and m['psnr_fg'] > 20.0  # What PSNR alone would have passed.


def test_a_collapsed_blob_fails_every_headline_metric():
  """The paper's initial density (toy_sweep.PREVIOUS_DEFAULT's: what the pale-object runs on a
  white background collapsed to) on the white snowman."""
  previous = toy_sweep.PREVIOUS_DEFAULT
  m = _evaluate('snowman', density_offset=previous['field.density_offset'],
                density_bias_scale=previous['field.density_bias_scale'])
  assert m['iou'] < 0.5
  assert [f.split()[0] for f in m['headline_failures']] == list(toy.HEADLINE)

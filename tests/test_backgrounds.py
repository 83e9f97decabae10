"""Random known backgrounds (field.background='random', toy.backgrounds): the prior's images on
every level, each training view on one of them, and nothing else moved."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax.defaults import get_config
from dreamfusion_jax import config_check, toy, train
from dreamfusion_jax.errors import SetupError


def tiny_toy(tmp_path, backgrounds):
  config = get_config()
  config.prompt, config.guidance.name = 'white mug', 'empirical'
  config.toy.objects, config.toy.images_per_object = ('white mug', 'red ball'), 8
  config.toy.cache_dir, config.render.resolution = str(tmp_path), 8
  config.render.num_samples, config.render.num_importance_samples = 16, 0
  config.toy.backgrounds = backgrounds
  return config


def test_prior_images_are_the_white_renders_on_each_level(tmp_path):
  """Over (white, black): the white half is the white-only dataset, bit for bit; the black half
  equals it where the object is opaque and is 0 where the white render shows background, with
  the same captions; the two datasets have their own cache files."""
  white_images, white_captions = toy.build_dataset(tiny_toy(tmp_path, (1.0,)))
  both = tiny_toy(tmp_path, (1.0, 0.0))
  images, captions = toy.build_dataset(both)
  n = 8  # images per object
  assert images.shape[0] == 2 * white_images.shape[0] and len(captions) == len(images)
  for k in range(2):  # Each object's block: its renders on white, then on black.
    on_white, on_black = images[2 * n * k:2 * n * k + n], images[2 * n * k + n:2 * n * (k + 1)]
    np.testing.assert_array_equal(on_white, white_images[n * k:n * (k + 1)])
    assert captions[2 * n * k:2 * n * k + n] == captions[2 * n * k + n:2 * n * (k + 1)]
    assert captions[2 * n * k:2 * n * k + n] == white_captions[n * k:n * (k + 1)]
    background = on_white.min(-1) == 1.0  # (The mug is 0.92 at most: no object pixel is 1.)
    assert background.mean() > 0.3
    # 0 up to the faint density that a white render rounds to 1 (uint8 storage: 4/255).
    assert np.abs(on_black[background]).max() <= 4.5 / 255 and np.mean(on_black[background]) < 0.002
    # Object pixels: white render - (1 - acc), so never brighter, and equal where opaque.
    assert np.all(on_black <= on_white + 1e-6)
    assert np.mean(on_black[~background] == on_white[~background]) > 0.5
  assert toy.dataset_path(both) != toy.dataset_path(tiny_toy(tmp_path, (1.0,)))


def draws(background, levels=(1.0, 0.0), views=400):
  config = get_config()
  config.field.background, config.toy.backgrounds = background, levels
  return jax.vmap(lambda v: train.draw_view(train.view_key(jax.random.PRNGKey(3), 7, v), 7,
                                            config))(jnp.arange(views))


def test_each_view_draws_one_level_and_keeps_its_other_draws():
  """White and black about half each (Binomial(400, 1/2): 0.5 +- 0.075 is 3 sd); each view's
  background is solid; camera, light, mode and keys are the bits of a white-background run."""
  random, white = draws('random'), draws('white')
  level = np.asarray(random.background)
  assert np.all(level == level[:, :1]) and set(np.unique(level)) == {0.0, 1.0}
  assert 0.425 < np.mean(level[:, 0] == 0.0) < 0.575
  np.testing.assert_array_equal(np.asarray(white.background), 1.0)
  for a, b in zip(jax.tree.leaves(random._replace(background=0)),
                  jax.tree.leaves(white._replace(background=0))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  one = draws('random', levels=(0.25,), views=16)
  np.testing.assert_array_equal(np.asarray(one.background), 0.25)


def test_training_renders_show_the_drawn_background():
  """A field with no density renders exactly each view's background."""
  config = get_config()
  config.field.background, config.toy.backgrounds = 'random', (1.0, 0.0)
  config.render.resolution, config.render.num_samples = 4, 8
  config.render.num_importance_samples = 0
  config.field.density_offset, config.field.density_bias_scale = -60.0, 0.0  # Empty space.
  model = train.build_model(config, guidance=None)
  params = train.init_state(model, jax.random.PRNGKey(0)).params
  views = draws('random', views=8)
  rgb = np.asarray(train.render_views(params, model, views, 0)['rgb'])
  np.testing.assert_allclose(rgb, np.broadcast_to(
      np.asarray(views.background)[:, None, None, :], rgb.shape), atol=1e-6)
  assert {0.0, 1.0} <= set(np.unique(np.asarray(views.background)))


@pytest.mark.parametrize('change, message', [
    ({'toy.backgrounds': (1.0, 1.5)}, 'config.toy.backgrounds=(1.0, 1.5): must be a non-empty '
     'tuple of grey levels in [0, 1]'),
    ({'toy.backgrounds': ()}, 'config.toy.backgrounds=(): must be a non-empty tuple'),
])
def test_bad_backgrounds_are_one_line(change, message):
  from configs import toy as toy_config  # pylint: disable=import-outside-toplevel
  config = toy_config.get_config()
  config.update_from_flattened_dict(change)
  with pytest.raises(SetupError) as info:
    config_check.check(config)
  assert str(info.value).startswith(message) and len(str(info.value).splitlines()) == 1

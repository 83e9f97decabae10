"""The Janus options: 'fine' view buckets, per-view negatives and Perp-Neg (prompts.py, sds.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamfusion_jax.defaults import get_config
from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import prompts, sds, train
from dreamfusion_jax.guidance.gaussian import GaussianPrior

P = prompts
FRONT, LEFT, RIGHT, BACK, OBLIQUE, OVERHEAD = (P.FINE_FRONT, P.FINE_LEFT, P.FINE_RIGHT,
                                               P.FINE_BACK, P.FINE_OBLIQUE, P.FINE_OVERHEAD)


def _cfg(mode='fine', negatives='none'):
  cfg = get_config().prompts
  cfg.view_mode, cfg.negatives = mode, negatives
  return cfg


def test_fine_table():
  assert P.view_prompts('a cat', 'fine') == [
      'a cat', 'a cat, front view', 'a cat, left side view', 'a cat, right side view',
      'a cat, back view', 'a cat, oblique top view', 'a cat, overhead view']
  assert P.view_prompts('a cat', 'interpolated') == P.view_prompts('a cat')  # The paper's five.


@pytest.mark.parametrize('el,az,row', [
    (0.0, 0.0, FRONT), (0.0, 44.9, FRONT), (0.0, -44.9, FRONT),
    (0.0, 45.0, LEFT), (0.0, 45.1, LEFT), (0.0, -45.1, RIGHT), (0.0, -45.0, RIGHT),
    (0.0, 90.0, LEFT), (0.0, -90.0, RIGHT), (0.0, 270.0, RIGHT), (0.0, -270.0, LEFT),
    (0.0, 134.9, LEFT), (0.0, 135.1, BACK), (0.0, -134.9, RIGHT), (0.0, -135.1, BACK),
    (0.0, 180.0, BACK), (0.0, -180.0, BACK), (-10.0, 100.0, LEFT),
    (45.0, 90.0, LEFT), (45.1, 90.0, OBLIQUE), (45.1, 180.0, OBLIQUE), (60.0, 0.0, OBLIQUE),
    (60.1, 0.0, OVERHEAD), (90.0, -90.0, OVERHEAD),
])
def test_fine_buckets_at_their_boundaries(el, az, row):
  cfg = _cfg()
  assert int(P.view_index(el, az, cfg)) == row
  w = np.asarray(P.view_weights(el, az, cfg))
  np.testing.assert_array_equal(w, np.eye(7, dtype=np.float32)[row])


def test_fine_thresholds_come_from_the_config():
  cfg = _cfg()
  cfg.oblique_deg, cfg.overhead_deg, cfg.front_deg = 20.0, 70.0, 30.0
  assert int(P.view_index(25.0, 0.0, cfg)) == OBLIQUE
  assert int(P.view_index(65.0, 0.0, cfg)) == OBLIQUE
  assert int(P.view_index(0.0, 35.0, cfg)) == LEFT


def test_left_is_the_objects_own_left():
  # The object faces +x with +z up: its left hand points along up x forward = +y.
  np.testing.assert_array_equal(np.cross([0, 0, 1], [1, 0, 0]), [0, 1, 0])
  cam = camera_lib.camera_from_angles(0.0, 90.0, 1.5, 1.0)
  assert float(cam.origin[1]) > 1.4  # The azimuth +90 camera stands on +y ...
  assert int(P.view_index(0.0, 90.0, _cfg())) == LEFT  # ... and sees the left side.


def test_negative_tables():
  cfg = _cfg('discrete')
  rows, w = P.negative_table(cfg)
  assert rows.shape == w.shape == (5, P.MAX_NEGATIVES)
  assert (rows[P.ROW_BACK, 0], w[P.ROW_BACK, 0]) == (P.ROW_FRONT, np.float32(1.967))
  assert (rows[P.ROW_BACK, 1], w[P.ROW_BACK, 1]) == (P.ROW_SIDE, np.float32(0.394))
  assert (rows[P.ROW_FRONT, 0], w[P.ROW_FRONT, 0]) == (P.ROW_SIDE, np.float32(1.574))
  assert (rows[P.ROW_SIDE, 0], w[P.ROW_SIDE, 0]) == (P.ROW_FRONT, np.float32(1.574))
  assert not w[[P.ROW_PLAIN, P.ROW_OVERHEAD]].any()
  rows, w = P.negative_table(_cfg('fine'))
  assert dict(zip(rows[LEFT], w[LEFT])) == {FRONT: np.float32(1.574), RIGHT: np.float32(1.0),
                                            0: 0.0}
  assert dict(zip(rows[RIGHT][:2], w[RIGHT][:2])) == {FRONT: np.float32(1.574),
                                                      LEFT: np.float32(1.0)}
  assert rows[BACK, 0] == FRONT and w[BACK].sum() == pytest.approx(1.967 + 0.394)
  assert not w[[0, OBLIQUE, OVERHEAD]].any()


# ------------------------------------------------------------------------------------------------
# Perp-Neg.


def _eps_set(key, batch=4, k=3, shape=(4, 5, 3)):
  keys = jax.random.split(key, 3)
  eps_u = jax.random.normal(keys[0], (batch,) + shape)
  eps_c = jax.random.normal(keys[1], (batch,) + shape)
  eps_n = jax.random.normal(keys[2], (batch, k) + shape)
  return eps_u, eps_c, eps_n


def test_perp_neg_subtracts_only_what_is_orthogonal_to_the_positive_direction():
  eps_u, eps_c, eps_n = _eps_set(jax.random.PRNGKey(0))
  weights = jnp.array([[1.0, 0.5, 0.0], [2.0, 0.0, 0.3], [0.0, 0.0, 0.0], [1.967, 0.394, 1.0]])
  omega = 30.0
  out = sds.perp_neg_guidance(eps_u, eps_c, eps_n, weights, omega)
  cfg = sds.classifier_free_guidance(eps_u, eps_c, omega)
  subtracted = (cfg - out).reshape(4, -1)
  d = (eps_c - eps_u).reshape(4, -1)
  cos = jnp.sum(subtracted * d, -1) / (jnp.linalg.norm(subtracted, axis=-1) *
                                        jnp.linalg.norm(d, axis=-1) + 1e-30)
  np.testing.assert_allclose(cos[jnp.array([0, 1, 3])], 0.0, atol=1e-5)
  assert float(jnp.linalg.norm(subtracted[0])) > 1.0  # Something was subtracted ...
  np.testing.assert_allclose(subtracted[2], 0.0, atol=1e-4)  # ... except with zero weights.


def test_perp_neg_without_negatives_is_classifier_free_guidance():
  eps_u, eps_c, eps_n = _eps_set(jax.random.PRNGKey(1))
  for omega in (0.0, 7.5, 100.0):
    out = sds.perp_neg_guidance(eps_u, eps_c, eps_n, jnp.zeros((4, 3)), omega)
    np.testing.assert_allclose(out, sds.classifier_free_guidance(eps_u, eps_c, omega),
                               rtol=1e-6, atol=1e-5)


def test_perp_neg_hand_computed_2d_case():
  # d = eps_c - eps_u = (1, 0); the negative direction (1, 1) has perpendicular part (0, 1);
  # eps_hat = eps_u + (1 + omega) (d - w (0, 1)) = (2, -1) for omega = 1, w = 0.5.
  eps_u, eps_c = jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]])
  eps_n = jnp.array([[[1.0, 1.0]]])
  out = sds.perp_neg_guidance(eps_u, eps_c, eps_n, jnp.array([[0.5]]), 1.0)
  np.testing.assert_allclose(out, [[2.0, -1.0]])
  # A negative parallel to the prompt's direction is ignored entirely.
  out = sds.perp_neg_guidance(eps_u, eps_c, jnp.array([[[3.0, 0.0]]]), jnp.array([[5.0]]), 1.0)
  np.testing.assert_allclose(out, [[2.0, 0.0]])


class _TableGuidance:
  """eps(z_t, t, emb) = emb: the prediction is the embedding itself (counts its calls)."""
  calls = 0

  def eps(self, params, z_t, t, emb):
    del params, t
    _TableGuidance.calls += 1
    return emb + 0.0 * z_t


def test_guided_eps_with_negatives_is_one_call_and_perp_neg():
  eps_u, eps_c, eps_n = _eps_set(jax.random.PRNGKey(2), batch=2, k=2)
  weights = jnp.array([[1.0, 0.2], [0.0, 3.0]])
  z_t, t = jnp.zeros_like(eps_u), jnp.array([3, 4])
  _TableGuidance.calls = 0
  out = sds.guided_eps(_TableGuidance(), None, z_t, t, eps_c, eps_u, 10.0, eps_n, weights)
  assert _TableGuidance.calls == 1
  np.testing.assert_allclose(out, sds.perp_neg_guidance(eps_u, eps_c, eps_n, weights, 10.0),
                             rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# The negatives the update uses, per view.


def _frozen(mode, negatives):
  config = get_config()
  config.prompt, config.render.resolution = 'a cat', 4
  config.prompts.view_mode, config.prompts.negatives = mode, negatives
  vocabulary = P.view_prompts('a cat', 'fine') + P.view_prompts('a cat')[2:3] + ['']
  prior = GaussianPrior(vocabulary, jnp.zeros((len(vocabulary), 4, 4, 3)), std=0.2)
  model = train.build_model(config, prior)
  return prior, train.make_frozen(model)


def test_per_view_negative_embeddings_are_chosen_by_view():
  prior, frozen = _frozen('discrete', 'views')
  table = P.view_prompts('a cat')
  emb = {p: np.asarray(prior.embed([p]))[0] for p in table + ['']}
  np.testing.assert_allclose(frozen.uncond_table[P.ROW_BACK],
                             (1.967 * emb[table[P.ROW_FRONT]] + 0.394 * emb[table[P.ROW_SIDE]]) /
                             (1.967 + 0.394), rtol=1e-6)
  np.testing.assert_allclose(frozen.uncond_table[P.ROW_FRONT], emb[table[P.ROW_SIDE]])
  np.testing.assert_allclose(frozen.uncond_table[P.ROW_SIDE], emb[table[P.ROW_FRONT]])
  for row in (P.ROW_PLAIN, P.ROW_OVERHEAD):
    np.testing.assert_allclose(frozen.uncond_table[row], emb[''])
  assert frozen.neg_table is None


def test_perp_neg_tables_follow_the_view():
  prior, frozen = _frozen('fine', 'perp_neg')
  table = P.view_prompts('a cat', 'fine')
  emb = {p: np.asarray(prior.embed([p]))[0] for p in table + ['']}
  np.testing.assert_allclose(frozen.uncond_table[LEFT], emb[''])  # Perp-Neg keeps uncond.
  np.testing.assert_allclose(frozen.neg_table[LEFT, 0], emb[table[FRONT]])
  np.testing.assert_allclose(frozen.neg_table[LEFT, 1], emb[table[RIGHT]])
  np.testing.assert_allclose(frozen.neg_weights[LEFT], [1.574, 1.0, 0.0])
  np.testing.assert_allclose(frozen.neg_weights[OVERHEAD], 0.0)
  # In the update, a view's one-hot weights pick exactly its row's negatives.
  w = P.view_weights(0.0, -90.0, _cfg('fine'))  # A right-side camera.
  np.testing.assert_allclose(w @ frozen.neg_weights, [1.574, 1.0, 0.0], rtol=1e-6)
  np.testing.assert_allclose(jnp.tensordot(w, frozen.neg_table, axes=1)[1], emb[table[LEFT]])


# ------------------------------------------------------------------ caption noise (toy world)
def test_caption_noise_rows():
  from dreamfusion_jax import toy  # pylint: disable=import-outside-toplevel
  rows = np.tile(np.arange(1, 7), 2000)  # The 'fine' table's view rows, 12,000 images.
  same = toy.noisy_rows(np.random.default_rng(0), rows, 7, 0.0)
  np.testing.assert_array_equal(same, rows)
  noisy = toy.noisy_rows(np.random.default_rng(0), rows, 7, 0.3)
  changed = noisy != rows
  # Binomial(12000, 0.3): 5 standard deviations are 0.021.
  assert abs(changed.mean() - 0.3) < 0.021
  dropped = noisy == 0
  assert abs(dropped.sum() / changed.sum() - 0.5) < 0.05
  wrong = noisy[changed & ~dropped]
  assert wrong.min() >= 1 and wrong.max() <= 6  # A view word, never the true one (changed).
  # Each wrong word equally likely: every true row spreads over the 5 others.
  for true_row in range(1, 7):
    picks = noisy[(rows == true_row) & changed & ~dropped]
    counts = np.bincount(picks, minlength=7)[1:]
    others = np.delete(counts, true_row - 1)
    assert counts[true_row - 1] == 0 and others.min() > 0.5 * others.sum() / 5
  everything = toy.noisy_rows(np.random.default_rng(1), rows, 7, 1.0)
  assert np.all(everything != rows)


def test_toy_dataset_with_caption_noise(tmp_path):
  """The noisy dataset keeps its images, changes about p of its captions, and gets its own cache."""
  from dreamfusion_jax import toy  # pylint: disable=import-outside-toplevel
  config = get_config()
  config.prompt, config.guidance.name = 'toy hamburger', 'empirical'
  config.toy.objects, config.toy.images_per_object = ('toy hamburger', 'red ball'), 200
  config.toy.cache_dir, config.render.resolution = str(tmp_path), 4
  config.render.num_samples, config.render.num_importance_samples = 8, 0
  clean_images, clean = toy.build_dataset(config)
  config.toy.caption_noise = 0.5
  noisy_images, noisy = toy.build_dataset(config)
  np.testing.assert_array_equal(noisy_images, clean_images)
  changed = np.array([a != b for a, b in zip(clean, noisy)])
  assert 0.4 < changed.mean() < 0.6  # Binomial(400, 0.5): 5 standard deviations are 0.125.
  objects = {c.rsplit(', ', 1)[0] if ', ' in c else c for c in noisy}
  assert objects == {'toy hamburger', 'red ball'}  # Noise never moves an image to another object.
  assert 'toy hamburger' in noisy and len(list(tmp_path.glob('toy_*.npz'))) == 2


def test_toy_dataset_cache_is_keyed_by_what_captions_read(tmp_path):
  """Runs that differ only in their negatives share one dataset; a new view table or threshold
  makes a new one."""
  from dreamfusion_jax import toy  # pylint: disable=import-outside-toplevel
  config = get_config()
  config.prompt, config.guidance.name = 'toy hamburger', 'empirical'
  config.toy.objects, config.toy.images_per_object = ('toy hamburger',), 20
  config.toy.cache_dir, config.render.resolution = str(tmp_path), 4
  config.render.num_samples, config.render.num_importance_samples = 8, 0
  files = lambda: len(list(tmp_path.glob('toy_*.npz')))
  _, discrete = toy.build_dataset(config)
  config.prompts.negatives, config.prompts.neg_back_front = 'perp_neg', 3.0
  config.prompts.view_mode = 'interpolated'  # The paper's table, like 'discrete'.
  assert toy.build_dataset(config)[1] == discrete and files() == 1
  config.prompts.view_mode = 'fine'
  _, fine = toy.build_dataset(config)
  assert files() == 2 and any('left side' in c or 'right side' in c for c in fine)
  config.prompts.front_deg = 30.0
  toy.build_dataset(config)
  assert files() == 3


# ------------------------------------------------------------- the onion hamburger and marks
def test_onion_hamburger_tells_left_from_right():
  """Its onion shows in the left side view (azimuth +90, the object's own left) and not the
  right; its ketchup stays on the front."""
  from dreamfusion_jax import pictures, render, toy  # pylint: disable=import-outside-toplevel
  from dreamfusion_jax.toy import scenes  # pylint: disable=import-outside-toplevel
  config = get_config()
  settings = render.RenderSettings.from_config(config, randomized=False)
  field_fn = scenes.scene_field(scenes.get('onion hamburger'), 200.0)
  marks = toy.mark_colors('onion hamburger')
  assert set(marks) == {'mark', 'onion'}

  def fractions(az):
    cam = camera_lib.camera_from_angles(0.0, az, 1.3, 1.0)
    image = pictures.render_kinds(field_fn, toy.white_background, cam, 32, jnp.float32(0.0),
                                  pictures.headlight(cam), settings)['albedo']
    return {name: toy.mark_fraction(image, color) for name, color in marks.items()}

  left, right, front, back = fractions(90.0), fractions(-90.0), fractions(0.0), fractions(180.0)
  assert left['onion'] > 2 * toy.MARK_PRESENT and right['onion'] == 0.0
  assert front['mark'] > 2 * toy.MARK_PRESENT and back['mark'] == 0.0
  # No other colour of the hamburger passes for the onion, nor the onion for the ketchup.
  for color in (scenes.BUN, scenes.PATTY, scenes.LETTUCE, scenes.PICKLE, scenes.KETCHUP):
    assert np.max(np.abs(np.subtract(color, scenes.ONION))) >= 0.5


def test_marks_agree_per_view():
  from dreamfusion_jax import toy  # pylint: disable=import-outside-toplevel
  present, absent = 4 * toy.MARK_PRESENT, 0.0
  row = dict(mark=present, mark_truth=present, onion=absent, onion_truth=absent)
  assert toy.marks_agree(row, ['mark', 'onion']) is True
  assert toy.marks_agree(dict(row, onion=present), ['mark', 'onion']) is False  # A false onion.
  assert toy.marks_agree(dict(row, mark=absent), ['mark', 'onion']) is False  # A missing mark.
  # A mark the truth only glimpses (under 2 MARK_PRESENT) is not scored; the others still are.
  glimpsed = dict(row, onion_truth=toy.MARK_PRESENT, onion=absent)
  assert toy.marks_agree(glimpsed, ['mark', 'onion']) is True
  assert toy.marks_agree(dict(glimpsed, mark=absent), ['mark', 'onion']) is False
  # A view whose every mark is glimpsed is not scored at all.
  assert toy.marks_agree(dict(glimpsed, mark_truth=toy.MARK_PRESENT), ['mark', 'onion']) is None

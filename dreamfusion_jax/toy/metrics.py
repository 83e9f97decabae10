"""The toy world's metrics: whether SDS rebuilt the known object, at held-out views (design.md §5).

  make_evaluate(config)   (model, params, step) -> metrics at held-out cameras against the truth:
                          PSNR (whole, foreground, and gains over an empty field), silhouette IoU,
                          normal error, colour saturation and the marks' presence.
  HEADLINE                the targets a rebuilt object meets and a failed run cannot.
"""
import functools
from typing import Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from dreamfusion_jax import camera as camera_lib
from dreamfusion_jax import field as field_lib
from dreamfusion_jax import schedules
from dreamfusion_jax import pictures
from dreamfusion_jax.toy import dataset
from dreamfusion_jax.toy import scenes


def held_out_cameras(config) -> List[Tuple[float, float]]:
  """(elevation, azimuth) of the held-out views: 30 degrees x 8 azimuths, then 0 and 60 at the
  front (the paper evaluates at 30 degrees over azimuths [P A.3])."""
  return [(30.0, az) for az in range(0, 360, 45)] + [(0.0, 0.0), (60.0, 0.0)]


def psnr(a, b, mask=None) -> float:
  err = (np.asarray(a) - np.asarray(b)) ** 2
  mse = err.mean() if mask is None else err[mask].mean() if mask.any() else 0.0
  return float(10 * np.log10(1.0 / max(mse, 1e-10)))


# A pixel is mark-coloured within this max-channel distance of the mark's colour. The toy
# hamburger's other colours are 0.50 (pickle) to 0.95 (white) from its ketchup, the bun 0.57, so
# 0.3 counts a pixel that is at least about half mark when a 32x32 render blurs the mark's edge
# into the bun (0.2 counted a third of the pixels of a visibly placed mark; README).
MARK_TOLERANCE = 0.3
# A view "shows the mark" when at least this fraction of its pixels is mark-coloured (the toy
# hamburger's front view at the held-out cameras has 0.024: 24 of 1,024 pixels; the back 0).
MARK_PRESENT = 0.005


def mark_fraction(image, color, tolerance: float = MARK_TOLERANCE) -> float:
  """Fraction of pixels within `tolerance` (max channel difference) of the mark colour.

  image (H, W, 3), color (3,) -> a float in [0, 1].
  """
  return float(np.mean(np.max(np.abs(np.asarray(image) - np.asarray(color)), axis=-1)
                       < tolerance))


def saturation(image, mask) -> float:
  """Mean HSV saturation (max - min) / max over the masked pixels. image (H, W, 3), mask (H, W)."""
  pixels = np.asarray(image)[np.asarray(mask)]
  if pixels.size == 0:
    return 0.0
  high, low = pixels.max(-1), pixels.min(-1)
  return float(np.mean((high - low) / np.maximum(high, 1e-6)))


# The headline: scores a failed run cannot pass, {metric: the least a rebuilt object scores}.
# Whole-image PSNR can be passed by nothing at all (an empty field, all background, scores
# 29.7 dB against the white snowman on white, 12.7 against the toy hamburger), and so can
# foreground PSNR (20.7 dB inside the snowman's silhouette). An empty field scores IoU 0 and
# gains of 0 dB on any object. The whole-image gain (psnr_gain) is reported but not a target:
# for an object close to the background, a good render's edge errors outweigh what its
# colours add, so it is near 0 for success and failure alike.
HEADLINE = {'iou': 0.85, 'psnr_fg_gain': 3.0}


def headline_failures(metrics: Dict) -> List[str]:
  """The HEADLINE metrics below their targets, as 'NAME VALUE < TARGET' ([] when it passes)."""
  return [f'{k} {metrics[k]:.3g} < {target:g}' for k, target in HEADLINE.items()
          if not metrics[k] >= target]


def mark_colors(name: str) -> Dict[str, Tuple[float, float, float]]:
  """The marks counted per view for a library object: 'mark' (its painted mark, if any) and its
  part marks (scenes.PART_MARKS, e.g. the onion hamburger's 'onion'), name -> colour."""
  scene = scenes.get(name)
  marks = {'mark': scene.mark.color} if scene.mark is not None else {}
  marks.update(scenes.PART_MARKS.get(name, {}))
  return marks


def marks_agree(row: Dict, names) -> Optional[bool]:
  """Whether every mark's presence in a rendered view matches the truth's (fractions in `row`:
  NAME and NAME_truth). A mark the truth only glimpses (a fraction in (0, 2 MARK_PRESENT)) is not
  scored: whether the render "shows" it is a coin toss. None when no mark of the view is scored."""
  scored = [name for name in names if not 0.0 < row[f'{name}_truth'] < 2 * MARK_PRESENT]
  if not scored:
    return None
  return all((row[name] >= MARK_PRESENT) == (row[f'{name}_truth'] >= MARK_PRESENT)
             for name in scored)


def make_evaluate(config):
  """(model, params, step) -> metrics of the NeRF's albedo renders against the target object."""
  scene = scenes.get(config.prompt)
  truth_fn = scenes.scene_field(scene, config.toy.sharpness)
  settings, res = dataset.render_settings(config), config.render.resolution
  cams = [camera_lib.camera_from_angles(el, az, config.toy.eval_distance,
                                        config.toy.eval_focal_mult)
          for el, az in held_out_cameras(config)]

  def kinds(field_fn, background_fn, cam, variance):
    return pictures.render_kinds(field_fn, background_fn, cam, res, variance,
                                 pictures.headlight(cam), settings)

  # One compiled render serves every held-out camera (cameras are traced, not constants).
  render_truth = jax.jit(
      lambda cam: kinds(truth_fn, dataset.white_background, cam, jnp.float32(0.0)))
  truth = [render_truth(c) for c in cams]
  # An empty field's scores (every pixel the white background) per camera: (whole, foreground).
  empty = [np.ones_like(np.asarray(gt['albedo'])) for gt in truth]
  empty_scores = [(psnr(e, gt['albedo']), psnr(e, gt['albedo'], np.asarray(gt['acc']) > 0.5))
                  for e, gt in zip(empty, truth)]
  marks = mark_colors(config.prompt)

  # Compiled once per (nerf, background) modules: the step-0 and final evaluations share it.
  @functools.partial(jax.jit, static_argnums=(0, 1))
  def render_nerf(nerf, background, params, cam, variance):
    return kinds(*field_lib.bind(nerf, background, params), cam, variance)

  def evaluate(model, params, step: Optional[int] = None) -> Dict:
    """Metrics of params trained for `step` steps (None: config.num_steps, the end of the run).

    The step sets the IPE variance the field is rendered with, as in training: fresh params
    (step 0) are seen through the wide initial Gaussians, not the final narrow ones.
    """
    step = config.num_steps if step is None else step
    variance = field_lib.ipe_variance(schedules.lambda_sigma(step, config),
                                      config.field.ipe_covariance)
    rows = []
    for (el, az), cam, gt, (empty_whole, empty_fg) in zip(held_out_cameras(config), cams, truth,
                                                          empty_scores):
      out = render_nerf(model.nerf, model.background, params, cam, variance)
      gt_mask, mask = np.asarray(gt['acc']) > 0.5, np.asarray(out['acc']) > 0.5
      both = gt_mask & mask
      cos = np.sum(np.asarray(out['normal_vectors']) * np.asarray(gt['normal_vectors']), -1)
      whole, fg = psnr(out['albedo'], gt['albedo']), psnr(out['albedo'], gt['albedo'], gt_mask)
      row = dict(elevation=el, azimuth=az, psnr=whole, psnr_fg=fg,
                 # What the render adds to an empty field's score: 0 dB for an empty field,
                 # whatever the object's contrast with the background (HEADLINE).
                 psnr_gain=whole - empty_whole, psnr_fg_gain=fg - empty_fg,
                 iou=float(both.sum() / max((gt_mask | mask).sum(), 1)),
                 normal_err_deg=float(np.degrees(np.arccos(np.clip(cos[both], -1, 1))).mean())
                 if both.any() else 180.0,
                 # Colour saturation inside the true silhouette: CFG's over-saturation shows here.
                 saturation=saturation(out['albedo'], gt_mask),
                 saturation_truth=saturation(gt['albedo'], gt_mask))
      for name, color in marks.items():
        row[name] = mark_fraction(out['albedo'], color)
        row[f'{name}_truth'] = mark_fraction(gt['albedo'], color)
      if marks:
        row['marks_agree'] = marks_agree(row, marks)
      rows.append(row)
    mean = lambda k: float(np.mean([r[k] for r in rows]))
    metrics = dict(psnr=mean('psnr'), psnr_fg=mean('psnr_fg'), psnr_gain=mean('psnr_gain'),
                   psnr_fg_gain=mean('psnr_fg_gain'), iou=mean('iou'),
                   normal_err_deg=mean('normal_err_deg'), saturation=mean('saturation'),
                   saturation_truth=mean('saturation_truth'), views=rows)
    if 'mark' in marks:
      metrics['mark_front'] = rows[0]['mark']
      metrics['mark_back'] = rows[4]['mark']
    if marks:  # The fraction of the held-out views (those not ambiguous) whose marks agree.
      scored = [r['marks_agree'] for r in rows if r['marks_agree'] is not None]
      metrics['mark_agreement'] = float(np.mean(scored)) if scored else None
    metrics['headline_failures'] = headline_failures(metrics)
    return metrics

  return evaluate

"""run_render.py's report page (report.py): its curves against TensorBoard's rules, its content
against the run's files, and the page itself in real headless Chromium opened from file://."""
import base64
import hashlib
import json
import os
import re
import time

import numpy as np
import pytest

from configs import toy
from dreamfusion_jax import export, pictures, render, report, runner, turntable, workdir
from dreamfusion_jax.toy import scenes
from tests import browser

BALL_COLOR = (0.9, 0.5, 0.1)  # Orange: the screenshot test looks for it.
BALL = scenes.scene_field(scenes.union(scenes.sphere(0.3, color=BALL_COLOR)))
SMALL = export.Options(resolution=16, frames=8, sheet_views=4, mesh_resolution=24,
                       texture_size=64, chunk=256)


def _white(directions):
  return np.ones(directions.shape, np.float32)


def _log(workdir, start_step, steps, value):
  """TensorBoard events as a run from `start_step` writes them (runner.Logger)."""
  logger = runner.Logger(str(workdir), start_step)
  for step in steps:
    logger.scalars(step, {'loss': value(step), 'heldout/psnr': 2.0 * value(step)})
  logger.close()


def test_read_scalars_drops_what_a_resume_purges(tmp_path):
  """A run logs steps 1-10 and is killed; it resumes from its step-5 checkpoint and logs 6-8
  anew. TensorBoard shows 1-5 of the first file and 6-8 of the second (purge_step 6)."""
  _log(tmp_path, 0, range(1, 11), float)
  time.sleep(1.1)  # tensorboardX names event files by the second.
  _log(tmp_path, 5, range(6, 9), lambda s: 100.0 + s)
  scalars = report.read_scalars(str(tmp_path / 'tensorboard'))
  steps, values = scalars['loss']
  np.testing.assert_array_equal(steps, np.arange(1, 9))
  np.testing.assert_array_equal(values, [1, 2, 3, 4, 5, 106, 107, 108])
  np.testing.assert_array_equal(scalars['heldout/psnr'][1], 2 * values)
  # A file cut short by a kill reads up to its last whole record: step 8's last event (its
  # heldout/psnr) is lost, its loss is not.
  path = sorted((tmp_path / 'tensorboard').iterdir())[-1]
  path.write_bytes(path.read_bytes()[:-7])
  cut = report.read_scalars(str(tmp_path / 'tensorboard'))
  assert list(cut['loss'][0]) == list(range(1, 9))
  assert list(cut['heldout/psnr'][0]) == list(range(1, 8))


def test_vendored_viewer_is_the_pinned_bundle():
  with open(os.path.join(report.VENDOR, 'VERSION.json')) as f:
    pin = json.load(f)
  with open(os.path.join(report.VENDOR, pin['file']), 'rb') as f:
    bundle = f.read()
  assert pin['package'] == '@google/model-viewer' and pin['version'] == '4.4.0'
  assert hashlib.sha256(bundle).hexdigest() == pin['sha256']
  assert b'</script' not in bundle.lower()  # It is inlined in a <script> element.
  with open(os.path.join(report.VENDOR, 'LICENSE')) as f:
    assert 'Apache License' in f.read()


@pytest.fixture(scope='module')
def rendered_run(tmp_path_factory):
  """A workdir as run_train.py leaves it (config.json, metrics.json, events) with an analytic
  ball rendered into render/ by export.render_subject, and its report written."""
  work = tmp_path_factory.mktemp('report')
  config = workdir.config_dict(toy.get_config())
  config['prompt'] = 'a <b>ball</b> & co'  # Escaped on the page, not markup.
  metrics = dict(steps=4, psnr=20.5, initial_psnr=9.25, iou=0.75, initial_iou=0.125,
                 headline_failures=['iou 0.75 < 0.85'], initial_headline_failures=['iou'],
                 final=dict(loss=1.5, loss_sds=1.25), params_digest='ab' * 32,
                 views=[dict(psnr=20.5)])
  (work / 'config.json').write_text(json.dumps(config))
  (work / 'metrics.json').write_text(json.dumps(metrics))
  _log(work, 0, range(0, 5), lambda s: 10.0 - s)
  out = work / 'render'
  subject = pictures.field_subject(BALL, _white, render.RenderSettings(num_samples=32,
                                                                         num_importance=16))
  summary = dict(step=4, **export.render_subject(subject, str(out), SMALL))
  files = {k: str(out / v) for k, v in summary['files'].items()}
  written = report.write(str(out), str(work), summary, files)
  return work, metrics, written


def test_report_shows_the_run(rendered_run):
  work, metrics, written = rendered_run
  text = (work / 'render' / 'index.html').read_text()
  assert sorted(written) == ['curves_heldout', 'curves_train', 'report']
  assert '<title>a &lt;b&gt;ball&lt;/b&gt; &amp; co: dreamfusion_jax</title>' in text
  for kind in turntable.VIDEOS:
    assert f'<video src="{kind}.mp4"' in text
  for name in ('contact_sheet.png', 'curves_train.png', 'curves_heldout.png'):
    assert f'src="{name}"' in text and (work / 'render' / name).is_file()
  # The metrics table: step 0 against the end, for each metric the run has at both.
  assert '<tr><td>psnr</td><td>9.25</td><td>20.5</td></tr>' in text
  assert '<tr><td>iou</td><td>0.125</td><td>0.75</td></tr>' in text
  assert '<tr><td>loss_sds</td><td>1.25</td></tr>' in text and 'ab' * 32 in text
  assert '<b>Headline: failed: iou 0.75 &lt; 0.85</b>' in text
  # The viewer's model is the textured mesh's file, byte for byte.
  uri = re.search(r'<model-viewer src="data:model/gltf-binary;base64,([^"]+)"', text).group(1)
  assert base64.b64decode(uri) == (work / 'render' / 'mesh_textured.glb').read_bytes()


def test_report_of_an_unfinished_run_says_so():
  text = report.page({'prompt': 'x'}, None, dict(step=3), {}, None, '')
  assert 'has not finished' in text
  assert 'No mesh in this render' in text and '<model-viewer' not in text


@pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))
def test_report_opens_in_headless_chromium(rendered_run):
  """Opened by file:// as a double-click does: no console error, the viewer reports the mesh
  loaded and shows it (the ball's orange), every video and picture loads."""
  work, _, _ = rendered_run
  page = browser.open_report(str(work / 'render' / 'index.html'))
  assert page.errors == []
  assert page.model == 'loaded' and page.viewer_loaded
  assert len(page.videos) == len(turntable.VIDEOS)
  assert all(v['ready'] >= 2 and v['error'] is None and v['width'] == 16 for v in page.videos)
  assert len(page.images) == 3 and all(i['complete'] and i['width'] > 0 for i in page.images)
  pixels = page.viewer.reshape(-1, 3).astype(int)
  orange = (pixels[:, 0] - pixels[:, 2] > 80) & (pixels[:, 0] > 120)
  assert orange.mean() > 0.01, orange.mean()  # The ball, lit, not a blank canvas.

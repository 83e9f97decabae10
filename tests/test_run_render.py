"""run_render.py: every output of export.render_subject on an analytic field; the CLI end to end
on a tiny checkpoint (files, decoded videos, mesh); clear exit-2 errors without a traceback."""
import json
import os
import shutil

import imageio.v2 as imageio
import ml_collections
import numpy as np
import pytest
import jax.numpy as jnp
import trimesh

from dreamfusion_jax import export, pictures, render, report, turntable
from dreamfusion_jax.toy import scenes
from dreamfusion_jax.errors import EmptyFieldError, SetupError
from tests import browser, helpers


# Two steps of the toy world at the smallest sizes. density_offset -3 empties space around the
# initial density blob, so the tiny field is a ball at the centre.
TRAIN = [
    '--config=configs/toy.py', '--config.num_steps=2', *helpers.TINY_TOY,
    '--config.field.density_offset=-3.0', '--config.log.eval_every=1',
]
RENDER = ['--resolution=16', '--frames=4', '--sheet_views=4', '--mesh_resolution=24',
          '--texture_size=64', '--chunk=256']
TEXTURED = ['mesh_textured.glb', 'mesh_textured.obj', 'mesh_textured.mtl', 'mesh_textured.png']


run = helpers.run_cli  # run(script, *args): the CLI's CompletedProcess.


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('render')
  proc = run('run_train.py', f'--workdir={tmp / "work"}', *TRAIN,
             f'--config.toy.cache_dir={tmp / "cache"}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  return tmp / 'work'


def decode(path):
  reader = imageio.get_reader(str(path), format='FFMPEG')
  frames = np.stack([frame for frame in reader.iter_data()])
  fps = reader.get_meta_data()['fps']
  reader.close()
  return frames, fps


def white(directions):
  return jnp.ones_like(directions)


def analytic_subject(field_fn):
  return pictures.field_subject(field_fn, white, render.RenderSettings(num_samples=32,
                                                                       num_importance=16))


BALL = scenes.scene_field(scenes.union(scenes.sphere(0.3, center=(0.1, 0.0, 0.0),
                                                     color=(0.9, 0.5, 0.1))))
SMALL = export.Options(resolution=16, frames=8, sheet_views=4, mesh_resolution=24,
                       texture_size=64, chunk=256)


@pytest.mark.filterwarnings('ignore:os.fork')  # The reader starts ffmpeg (fork + exec).
def test_render_subject_writes_every_output(tmp_path):
  """Same Subject path as a checkpoint's. With 8 frames the 4 sheet columns are video frames;
  with 3 frames 3 of them are rendered afresh: the two sheets must agree."""
  summaries = {}
  for frames in (8, 3):
    out = tmp_path / str(frames)
    summaries[frames] = export.render_subject(analytic_subject(BALL), str(out),
                                              SMALL._replace(frames=frames))
    assert sorted(os.listdir(out)) == sorted(
        [f'{k}.mp4' for k in turntable.VIDEOS] + ['contact_sheet.png', 'mesh.glb', 'mesh.obj']
        + TEXTURED)
    for kind in turntable.VIDEOS:
      decoded, fps = decode(out / f'{kind}.mp4')
      assert decoded.shape == (frames, 16, 16, 3) and fps == 30, kind
  sheets = [imageio.imread(tmp_path / str(f) / 'contact_sheet.png').astype(int) for f in (8, 3)]
  assert sheets[0].shape == sheets[1].shape
  assert np.abs(sheets[0] - sheets[1]).max() <= 1
  assert summaries[8]['mesh']['faces'] > 100


def test_render_subject_of_an_empty_field_writes_nothing(tmp_path):
  empty = lambda x, v: (jnp.full(x.shape[:-1], -30.0), jnp.full(x.shape, 0.5))
  with pytest.raises(EmptyFieldError, match='the field is empty'):
    export.render_subject(analytic_subject(empty), str(tmp_path / 'render'), SMALL)
  assert not (tmp_path / 'render').exists()


@pytest.mark.slow  # Trains a tiny checkpoint first (about a minute on a loaded 2-core CPU).
@pytest.mark.filterwarnings('ignore:os.fork')  # The reader starts ffmpeg (fork + exec).
def test_writes_videos_contact_sheet_and_mesh(checkpoint):
  proc = run('run_render.py', f'--workdir={checkpoint}', *RENDER)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = checkpoint / 'render'
  assert sorted(os.listdir(out)) == sorted(
      [f'{k}.mp4' for k in turntable.VIDEOS] + ['contact_sheet.png', 'mesh.glb', 'mesh.obj',
                                               'summary.json', 'index.html', 'curves_train.png',
                                               'curves_heldout.png'] + TEXTURED)
  for kind in turntable.VIDEOS:
    frames, fps = decode(out / f'{kind}.mp4')
    assert frames.shape == (4, 16, 16, 3) and fps == 30, kind
  sheet = imageio.imread(out / 'contact_sheet.png')
  assert sheet.shape[0] > 5 * 16 and sheet.shape[1] > 4 * 16
  mesh = trimesh.load(out / 'mesh.glb', force='mesh')
  assert len(mesh.faces) > 0 and mesh.visual.vertex_colors.shape[0] == len(mesh.vertices)
  summary = json.loads((out / 'summary.json').read_text())
  assert summary['step'] == 2 and summary['mesh']['faces'] == len(mesh.faces)
  assert 'Traceback' not in proc.stderr
  # The report's held-out curves (log.eval_every=1) end where metrics.json does, from step 0.
  metrics = json.loads((checkpoint / 'metrics.json').read_text())
  scalars = report.read_scalars(str(checkpoint / 'tensorboard'))
  for name in ('psnr', 'psnr_fg', 'iou', 'normal_err_deg'):
    steps, values = scalars[f'heldout/{name}']
    assert list(steps) == [0, 1, 2], name
    np.testing.assert_allclose(values[[0, 2]], [metrics[f'initial_{name}'], metrics[name]],
                               rtol=1e-6, err_msg=name)  # TensorBoard keeps float32.
  if browser.missing() is None:  # test_report.py says when it is skipped.
    page = browser.open_report(str(out / 'index.html'))
    assert page.errors == [] and page.model == 'loaded' and page.viewer_loaded


@pytest.mark.slow  # Trains a tiny checkpoint first (about a minute on a loaded 2-core CPU).
def test_empty_field_exits_2_and_writes_no_mesh(checkpoint, tmp_path):
  # The same weights read with a raw-density offset of -60: nothing is left to see.
  work = tmp_path / 'empty'
  shutil.copytree(checkpoint / 'checkpoints', work / 'checkpoints')
  config = json.loads((checkpoint / 'config.json').read_text())
  config['field']['density_offset'] = -60.0
  (work / 'config.json').write_text(json.dumps(config))
  proc = run('run_render.py', f'--workdir={work}', *RENDER)
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert 'the field is empty' in proc.stderr and 'no mesh written' in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not (work / 'render').exists()


def test_missing_run_or_checkpoint_or_bad_flag_exits_2(tmp_path):
  (tmp_path / 'config.json').write_text('{}')
  truncated = tmp_path / 'truncated'
  truncated.mkdir()
  (truncated / 'config.json').write_text('{"field": {"density_off')
  for workdir, flag, message in (
      (tmp_path / 'nothing', '--frames=4', 'config.json not found'),
      (tmp_path, '--frames=4', 'no checkpoint'),
      (tmp_path, '--light=sun', '--light'),
      (tmp_path, '--frames=x', "error: flag --frames=x: invalid literal for int()"),
      (truncated, '--frames=4', f'error: {truncated}/config.json cannot be read')):
    proc = run('run_render.py', f'--workdir={workdir}', flag)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert message in proc.stderr and 'Traceback' not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # One line.
  assert sorted(os.listdir(tmp_path)) == ['config.json', 'truncated']  # Nothing created.


# (option, value, the message's start): every bad option is one line naming the flag.
BAD_OPTIONS = {
    'nan elevation': ('elevation_deg', float('nan'), '--elevation=nan must be a number of '
                      'degrees in [-90, 90]'),
    'elevation past the pole': ('elevation_deg', 120.0, '--elevation=120.0 must be a number'),
    'infinite distance': ('distance', float('inf'), '--distance=inf must be a finite number > 0'),
    'zero distance': ('distance', 0.0, '--distance=0.0 must be a finite number > 0'),
    'nan focal length': ('focal_mult', float('nan'), '--focal_mult=nan must be a finite number'),
    'nan mesh level': ('mesh_level', float('nan'), '--mesh_level=nan must be a finite log '
                       'density below'),
    'mesh level above the field': ('mesh_level', 1e9, "--mesh_level=1000000000.0 must be a finite "
                                   "log density below the field's largest, "
                                   'field.max_log_density=15'),
    'odd resolution': ('resolution', 33, '--resolution=33 must be an even number >= 16'),
    'no frames': ('frames', 0, '--frames=0 must be >= 1'),
    'texture size not a power of two': ('texture_size', 1000, '--texture_size=1000 must be a '
                                        'power of two from 16 to 8192'),
    'negative texture size': ('texture_size', -1, '--texture_size=-1 must be a power of two'),
}


@pytest.mark.parametrize('case', list(BAD_OPTIONS))
def test_bad_option_is_one_line_naming_the_flag(case):
  name, value, message = BAD_OPTIONS[case]
  with pytest.raises(SetupError) as raised:
    export.check(SMALL._replace(**{name: value}), max_log_density=15.0)
  assert str(raised.value).startswith(message), str(raised.value)
  assert '\n' not in str(raised.value)


@pytest.mark.parametrize('interrupt', [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_render_writes_nothing_and_keeps_the_earlier_one(tmp_path, monkeypatch,
                                                                      interrupt):
  """Renders go to a temporary directory moved into place whole: stopped after writing a video,
  the workdir has no new file, and the earlier render/ is as it was."""
  earlier = tmp_path / 'render'
  earlier.mkdir()
  (earlier / 'summary.json').write_text('{"step": 1}')
  config = ml_collections.ConfigDict({'field': {'max_log_density': 15.0}})
  monkeypatch.setattr(export, 'load', lambda workdir: (analytic_subject(BALL), 5, config))

  def write_some_then_stop(subject, out_dir, options):
    with open(os.path.join(out_dir, 'shaded.mp4'), 'wb') as f:
      f.write(b'half a video')
    raise interrupt()

  monkeypatch.setattr(export, 'render_subject', write_some_then_stop)
  with pytest.raises(interrupt):
    export.run(str(tmp_path), SMALL)
  assert sorted(os.listdir(tmp_path)) == ['render']
  assert os.listdir(earlier) == ['summary.json']
  assert (earlier / 'summary.json').read_text() == '{"step": 1}'


def test_a_finished_render_replaces_the_earlier_one_whole(tmp_path, monkeypatch):
  earlier = tmp_path / 'render'
  earlier.mkdir()
  (earlier / 'stale.mp4').write_text('old')
  config = ml_collections.ConfigDict({'field': {'max_log_density': 15.0}})
  monkeypatch.setattr(export, 'load', lambda workdir: (analytic_subject(BALL), 5, config))
  summary = export.run(str(tmp_path), SMALL._replace(mesh=False, frames=2))
  assert sorted(os.listdir(tmp_path)) == ['render']  # No temporary directory left.
  assert sorted(os.listdir(earlier)) == sorted(  # The report, without curves: no events.
      [f'{k}.mp4' for k in turntable.VIDEOS] + ['contact_sheet.png', 'summary.json', 'index.html'])
  assert json.loads((earlier / 'summary.json').read_text())['step'] == summary['step'] == 5

"""DIR/render/index.html: one page of what a run made, that opens by double-click (file://).

  read_scalars(tensorboard_dir)  every scalar tag of the run's TensorBoard events: {tag: (steps,
                                 values)}, as TensorBoard shows them after resumes
  plot_curves(scalars, out_dir)  curves_train.png (loss terms, t, weights) and, where the run was
                                 evaluated, curves_heldout.png (the toy world's held-out metrics)
  page(...)                      the HTML: prompt and config, turntable videos, contact sheet,
                                 curves, metrics.json's table, the mesh in an interactive viewer
  write(out_dir, workdir, summary) reads the run's files and writes index.html and the curves

The viewer is @google/model-viewer, vendored in dreamfusion_jax/vendor/model-viewer (VERSION.json
says which, LICENSE is its licence). Chrome refuses module scripts and fetch() on file:// pages
(origin 'null'), so its UMD bundle goes into the page as a classic inline script and the GLB as
a data: URI; images and videos are relative links, which file:// pages may load. The page marks
the viewer's outcome on <body data-model="loaded|error|none">, which tests read.
"""
import base64
import glob
import html
import json
import math
import os
import struct
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from dreamfusion_jax import config_check
from dreamfusion_jax import turntable

VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'vendor', 'model-viewer')
# The config fields the page's summary shows first (the whole config.json is below them).
SUMMARY_FIELDS = ('prompt', 'seed', 'num_steps', 'guidance.name', 'guidance.stable_diffusion.model',
                  'guidance.scale', 'guidance.t_range', 'render.resolution', 'render.batch_size',
                  'prompts.view_mode', 'ablation.shading', 'ablation.textureless',
                  'ablation.view_prompts', 'optimizer.name')
HELDOUT = 'heldout/'  # runner.heldout_scalars' tag prefix.


# --------------------------------------------------------------------------- curves


def _records(path: str):
  """The records of a TFRecord file (TensorBoard's event file): uint64 length, uint32 CRC of
  the length, the data, uint32 CRC of the data. A record cut short (a killed run) ends it."""
  with open(path, 'rb') as f:
    while True:
      header = f.read(12)
      if len(header) < 12:
        return
      (length,) = struct.unpack('<Q', header[:8])
      data = f.read(length)
      if len(f.read(4)) < 4 or len(data) < length:
        return
      yield data


def read_scalars(tensorboard_dir: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
  """{tag: (steps (N,) int, values (N,) float)} of every scalar in the directory's event files.

  Files are read oldest first. A resumed run's writer starts with a SessionLog.START at its
  purge step (runner.Logger): points an earlier file logged at or after it are dropped, as
  TensorBoard drops them; a step logged twice keeps its latest value.
  """
  from tensorboardX.proto import event_pb2
  points: Dict[str, Dict[int, float]] = {}
  files = sorted(glob.glob(os.path.join(tensorboard_dir, 'events.out.tfevents.*')),
                 key=lambda p: (os.path.basename(p).split('.')[3], p))  # Their start times.
  for path in files:
    for data in _records(path):
      event = event_pb2.Event.FromString(data)
      if event.HasField('session_log') and event.session_log.status == event.session_log.START:
        for steps in points.values():
          for step in [s for s in steps if s >= event.step]:
            del steps[step]
      for value in event.summary.value:
        if value.HasField('simple_value'):
          points.setdefault(value.tag, {})[event.step] = value.simple_value
  return {tag: (np.array(sorted(p), np.int64), np.array([p[s] for s in sorted(p)], np.float64))
          for tag, p in sorted(points.items()) if p}


def _grid_figure(scalars: Dict[str, Tuple[np.ndarray, np.ndarray]], tags: Sequence[str],
                 path: str, title: str) -> None:
  """A PNG of one small plot per tag, four to a row, against the step."""
  import matplotlib
  matplotlib.use('Agg')  # No display: files only.
  from matplotlib import pyplot as plt
  cols = min(4, len(tags))
  rows = math.ceil(len(tags) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
  for ax, tag in zip(axes.flat, tags):
    steps, values = scalars[tag]
    ax.plot(steps, values, marker='.' if len(steps) < 30 else None, lw=1.2)
    ax.set_title(tag.removeprefix(HELDOUT), fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    positive = values[np.isfinite(values)]
    if tag.startswith('loss') and len(positive) and positive.min() > 0 and (
        positive.max() > 100 * positive.min()):
      ax.set_yscale('log')  # Loss terms span decades.
  for ax in list(axes.flat)[len(tags):]:
    ax.axis('off')
  for ax in axes[-1]:
    ax.set_xlabel('step', fontsize=8)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_curves(scalars: Dict[str, Tuple[np.ndarray, np.ndarray]], out_dir: str) -> Dict[str, str]:
  """out_dir/curves_train.png (every training tag) and curves_heldout.png (every heldout/ tag,
  if any). Returns {'curves_train': path, 'curves_heldout': path} for those written."""
  files = {}
  groups = (('curves_train', 'training: the loss terms and schedules',
             [t for t in scalars if not t.startswith(HELDOUT)]),
            ('curves_heldout', 'held-out views against the true object',
             [t for t in scalars if t.startswith(HELDOUT)]))
  for name, title, tags in groups:
    if tags:
      files[name] = os.path.join(out_dir, f'{name}.png')
      _grid_figure(scalars, tags, files[name], title)
  return files


# --------------------------------------------------------------------------- the page


def _fmt(v) -> str:
  if isinstance(v, float):
    return f'{v:.4g}'
  if isinstance(v, (list, tuple)):
    return ', '.join(_fmt(x) for x in v)
  return str(v)


def _table(rows: Sequence[Sequence], header: Sequence[str]) -> str:
  head = ''.join(f'<th>{html.escape(h)}</th>' for h in header)
  body = ''.join('<tr>' + ''.join(f'<td>{html.escape(_fmt(c))}</td>' for c in r) + '</tr>'
                 for r in rows)
  return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def metrics_tables(metrics: Dict) -> str:
  """metrics.json as tables: 'step 0 | end' for each metric the run also has at step 0 (the
  toy world's), then the final loss terms, then the rest (per-view rows left out)."""
  initial = {k[len('initial_'):] for k in metrics if k.startswith('initial_')}
  both = [(k, metrics[f'initial_{k}'], metrics[k]) for k in metrics
          if k in initial and not isinstance(metrics[k], (list, dict))]
  parts = []
  if isinstance(metrics.get('headline_failures'), list):  # The toy world's (toy.HEADLINE).
    failures = metrics['headline_failures']
    parts.append('<p><b>Headline: ' + ('passed' if not failures else 'failed: ' + html.escape(
        '; '.join(failures))) + '</b> (toy.HEADLINE: scores an empty field cannot pass)</p>')
  if both:
    parts.append('<h3>Held-out metrics</h3>' + _table(both, ('metric', 'step 0', 'end')))
  if isinstance(metrics.get('final'), dict):
    parts.append('<h3>Last logged training scalars</h3>'
                 + _table(sorted(metrics['final'].items()), ('scalar', 'value')))
  skip = initial | {f'initial_{k}' for k in initial} | {'final', 'views', 'initial_views'}
  kept = {k: v for k, v in metrics.items() if k not in skip}
  rest = [(k, v) for k, v in config_check.leaves(kept).items()
          if not (isinstance(v, list) and v and isinstance(v[0], dict))]
  parts.append('<h3>Run</h3>' + _table(rest, ('field', 'value')))
  return '\n'.join(parts)


def _data_uri(path: str, mime: str) -> str:
  with open(path, 'rb') as f:
    return f'data:{mime};base64,' + base64.b64encode(f.read()).decode('ascii')


def model_viewer_script() -> str:
  """The vendored viewer's bundle, for an inline <script> (it holds no '</script')."""
  with open(os.path.join(VENDOR, 'VERSION.json')) as f:
    bundle = json.load(f)['file']
  with open(os.path.join(VENDOR, bundle), encoding='utf-8') as f:
    return f.read()


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; font-size: 1.2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0 1em; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
.videos { display: flex; flex-wrap: wrap; gap: 8px; }
.videos figure { margin: 0; text-align: center; font-size: 0.8em; }
img.wide { max-width: 100%; image-rendering: pixelated; }
model-viewer { width: 100%; height: 480px; background: #f4f4f4; }
.note { color: #a33; } pre { font-size: 0.75em; background: #f6f6f6; padding: 0.6em; }
"""

# Marks the viewer's outcome on <body data-model=...> (tests read it; people see the viewer).
STATUS_SCRIPT = """
const viewer = document.querySelector('model-viewer');
if (!viewer) { document.body.dataset.model = 'none'; }
else {
  const loaded = () => { document.body.dataset.model = 'loaded'; };
  if (viewer.loaded) loaded();  // A data: URI can load before this script runs.
  viewer.addEventListener('load', loaded);
  viewer.addEventListener('error', (e) => {
    document.body.dataset.model = 'error';
    console.error('model-viewer could not show the mesh', e.detail);
  });
}
"""


def page(config: Dict, metrics: Optional[Dict], summary: Dict, files: Dict[str, str],
         glb_uri: Optional[str], viewer_js: str) -> str:
  """The report's HTML.

  Args:
    config: the run's config.json; metrics: its metrics.json (None: the run has not finished).
    summary: export.run's summary (step, options, mesh); files: {name: file name in the page's
      directory} of what is there (videos by kind, contact_sheet, curves_*).
    glb_uri: the mesh as a data: URI, or None (no mesh written); viewer_js: the viewer's bundle.
  """
  flat = config_check.leaves(config)
  title = html.escape(str(config.get('prompt', '')))
  step = summary.get('step')
  parts = [f'<h1>{title}</h1>',
           f'<p>dreamfusion_jax run rendered at step {step}.</p>']
  if metrics is None:
    parts.append('<p class="note">No metrics.json: the run has not finished (this is its '
                 'latest checkpoint).</p>')
  elif metrics.get('steps') != step:
    parts.append(f'<p class="note">metrics.json is of step {metrics.get("steps")}, the '
                 f'checkpoint of step {step}.</p>')
  parts.append('<h2>Config</h2>' + _table([(k, flat[k]) for k in SUMMARY_FIELDS if k in flat],
                                          ('field', 'value')))
  parts.append('<details><summary>config.json</summary><pre>'
               + html.escape(json.dumps(config, indent=1)) + '</pre></details>')
  videos = [k for k in turntable.VIDEOS if k in files]
  if videos:
    options = summary.get('options', {})
    parts.append(f'<h2>Turntable</h2><p>{options.get("frames")} frames at elevation '
                 f'{options.get("elevation_deg")}&deg;, distance {options.get("distance")}.</p>'
                 '<div class="videos">' + ''.join(
                     f'<figure><video src="{html.escape(files[k])}" autoplay loop muted '
                     f'playsinline controls width="{max(192, options.get("resolution", 128))}"></video>'
                     f'<figcaption>{k}</figcaption></figure>' for k in videos) + '</div>')
  if 'contact_sheet' in files:
    parts.append(f'<h2>Contact sheet</h2><img class="wide" src="{files["contact_sheet"]}" '
                 'alt="contact sheet">')
  if glb_uri:
    mesh = summary.get('mesh', {})
    parts.append(f'<h2>Mesh</h2><p>{mesh.get("vertices")} vertices, {mesh.get("faces")} faces '
                 f'at raw-density level {_fmt(mesh.get("level"))}; drag to turn, scroll to '
                 'zoom.</p>'
                 f'<model-viewer src="{glb_uri}" camera-controls auto-rotate loading="eager"'
                 ' shadow-intensity="0.6" exposure="1.1" alt="the mesh"><div slot="progress-bar"></div></model-viewer>')
  else:
    parts.append('<h2>Mesh</h2><p>No mesh in this render (run_render.py --nomesh).</p>')
  curves = [k for k in ('curves_train', 'curves_heldout') if k in files]
  if curves:
    parts.append('<h2>Training curves</h2>' + ''.join(
        f'<img class="wide" src="{files[k]}" alt="{k}"><br>' for k in curves))
  if metrics is not None:
    parts.append('<h2>metrics.json</h2>' + metrics_tables(metrics))
  return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
          f'<title>{title}: dreamfusion_jax</title><style>{STYLE}</style>'
          f'<script>{viewer_js}</script></head>\n<body>\n' + '\n'.join(parts)
          + f'\n<script>{STATUS_SCRIPT}</script>\n</body></html>\n')


def _read_json(path: str) -> Optional[Dict]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write(out_dir: str, workdir: str, summary: Dict, files: Dict[str, str]) -> Dict[str, str]:
  """Writes out_dir/index.html and the curves from workdir's config.json, metrics.json and
  tensorboard/ events; `files` are the render's ({name: path in out_dir}).

  Returns the files written ({'report': path, 'curves_*': path}).
  """
  config = _read_json(os.path.join(workdir, 'config.json')) or {}
  metrics = _read_json(os.path.join(workdir, 'metrics.json'))
  written = plot_curves(read_scalars(os.path.join(workdir, 'tensorboard')), out_dir)
  names = {k: os.path.basename(v) for k, v in {**files, **written}.items()}
  glb = files.get('textured_glb') or files.get('glb')
  glb_uri = _data_uri(glb, 'model/gltf-binary') if glb else None
  written['report'] = os.path.join(out_dir, 'index.html')
  with open(written['report'], 'w', encoding='utf-8') as f:
    f.write(page(config, metrics, summary, names, glb_uri, model_viewer_script()))
  return written

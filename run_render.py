"""Turntable videos, a contact sheet and a mesh of a trained run: python run_render.py --workdir=DIR

  python run_render.py --workdir=runs/toy                       # CPU defaults: 128^2, 60 frames
  python run_render.py --workdir=runs/toy --light=world:1,0,0   # relit from the front (+x)
  python run_render.py --workdir=runs/burger --resolution=512 --frames=120 \
      --mesh_resolution=256                                     # the paper's size, on a GPU

Loads DIR/config.json and the latest checkpoint in DIR/checkpoints and writes DIR/render/:
{shaded,albedo,textureless,normals,depth}.mp4 (30 fps), contact_sheet.png (8 azimuths x the five
kinds), mesh.glb and mesh.obj (vertex colours from the albedo), mesh_textured.{glb,obj,mtl,png}
(the same mesh UV-unwrapped, its albedo baked into a texture), index.html (the report: open it
by double-click; training curves as curves_*.png beside it) and summary.json. They are written
into a temporary directory and moved into DIR/render whole, so an interrupted render leaves no
file and any earlier render as it was.

Exit codes: 0 done; 2 a bad flag or workdir (one line naming it and what it allows); 130
interrupted (Ctrl-C).
"""

import typing

from absl import app
from absl import flags
from absl import logging

from dreamfusion_jax import export
from dreamfusion_jax.errors import fail

_WORKDIR = flags.DEFINE_string('workdir', None, 'A run_train.py output directory.')


def define_option_flags():
  """One flag per export.Options field (export.FLAGS: its name and help; the default and type
  are the field's)."""
  defaults = export.Options()
  define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
            str: flags.DEFINE_string}
  hints = typing.get_type_hints(export.Options)
  for field in export.Options._fields:
    name, help_text = export.FLAGS[field]
    kind = hints[field]
    kind = float if kind == typing.Optional[float] else kind
    define[kind](name, getattr(defaults, field), help_text)


define_option_flags()
flags.mark_flags_as_required(['workdir'])


def parse_flags(argv):
  """absl's flag parsing, with its errors as one line and exit code 2 (absl's own exits 1)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(str(e).splitlines()[0], 2)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs its restore at INFO.
  from dreamfusion_jax.errors import SetupError
  options = export.Options(**{field: getattr(flags.FLAGS, export.FLAGS[field][0])
                              for field in export.Options._fields})
  try:
    summary = export.run(_WORKDIR.value, options)
  except SetupError as e:
    fail(str(e), 2)
  except KeyboardInterrupt:
    fail(f'interrupted: nothing written ({_WORKDIR.value}/render, if any, is as it was)', 130)
  print(f"done: step {summary['step']}; wrote {', '.join(sorted(summary['files'].values()))} "
        f'in {_WORKDIR.value}/render; open {_WORKDIR.value}/render/index.html')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)

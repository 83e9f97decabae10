"""Errors a person can act on: run_train.py prints the message without a traceback and exits with
code 2 for a SetupError (a bad config value, a missing model, a workdir it cannot use) and 1 for
a RunError (a failure during training, such as a checkpoint that cannot be written)."""
import sys


def fail(message: str, code: int) -> None:
  """What run_train.py and run_render.py do with an error a person can act on: one line
  `error: message` on stderr, then exit with `code` (2 bad input, 1 a run failure, 130 Ctrl-C)."""
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(code)


class SetupError(Exception):
  """Raised before training starts, with a message that names what is wrong and how to fix it."""


class EmptyFieldError(SetupError):
  """The field has no surface to export (nothing a render sees is opaque); no file is written."""


class RunError(Exception):
  """Raised during training by a failure a person can act on (a checkpoint that cannot be
  written): run_train.py prints the message and exits with code 1, without a traceback."""

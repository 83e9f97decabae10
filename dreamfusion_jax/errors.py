"""Errors a person can act on (a bad config value, a missing model): run_train.py prints the
message and exits with code 2, without a traceback."""


class SetupError(Exception):
  """Raised before training starts, with a message that names what is wrong and how to fix it."""

"""Exit codes that survive tensorflow-io: entry points leave through `run_and_exit`.

After tensorflow-io's S3 client has been used, Python's interpreter teardown
runs the AWS SDK's static destructors in an order that aborts with "pure
virtual method called" / "terminate called without an active exception":
the process dies with SIGABRT (exit 134) after it had finished, so a
successful run looks failed and a failed one loses its code. Once
tensorflow-io is loaded, deephub flushes its output and leaves with
`os._exit`, which skips that teardown. Without tensorflow-io nothing changes.

This module imports neither TensorFlow nor tensorflow-io.
"""

import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn


def tensorflow_io_loaded() -> bool:
  """True once tensorflow-io has been imported in this process."""
  return "tensorflow_io" in sys.modules


def exit_now(code: int | str | None) -> NoReturn:
  """Exits with `code` like `sys.exit`, without the teardown once tensorflow-io is loaded.

  Args:
    code: None or 0 for success, an int, or a message that is printed to
      stderr with exit code 1 (as `sys.exit` does).
  """
  if not tensorflow_io_loaded():
    sys.exit(code)
  if isinstance(code, str):
    print(code, file=sys.stderr)
    code = 1
  logging.shutdown()  # Flushes absl's handlers and any log file.
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code or 0)


def run_and_exit(entry: Callable[[], object]) -> NoReturn:
  """Runs an entry point and exits with its code (raised or returned) through `exit_now`.

  An uncaught exception prints its traceback and exits 1, as Python would.
  """
  try:
    code = entry()
  except SystemExit as done:
    exit_now(done.code)
  except BaseException:
    if not tensorflow_io_loaded():
      raise
    traceback.print_exc()
    exit_now(1)
  exit_now(code if isinstance(code, int) else 0)

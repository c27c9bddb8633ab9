"""Errors that are the user's to fix.

Entry points print a `UserError` as one line (no traceback) and exit non-zero;
anything else is a bug and keeps its traceback.
"""

import difflib
import sys
from collections.abc import Iterable

# Every entry point (`deep`, `python -m deephub.train`, the data service)
# prints a user error behind this one prefix, so scripts grep for one line.
PREFIX = "deephub: error: "


class UserError(Exception):
  """Bad input (config, data, paths): the message says what to do."""


def print_user_error(error: Exception) -> int:
  """Prints `error` on stderr as one `deephub: error: ...` line (its whitespace folded).

  Returns:
    2, the exit code of a user error (as argparse uses for bad arguments).
  """
  print(PREFIX + " ".join(str(error).split()), file=sys.stderr, flush=True)
  return 2


def closest(name: str, candidates: Iterable[str], n: int = 3) -> str:
  """Returns "'a', 'b'" for the candidates closest to `name`, or a fallback.

  Args:
    name: the misspelt key or name.
    candidates: the valid ones.
    n: at most this many suggestions.
  """
  candidates = list(candidates)
  matches = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
  if not matches:
    # Fall back to keys that share the last dotted part, then to anything.
    last = name.rsplit(".", 1)[-1]
    matches = [c for c in candidates if c.rsplit(".", 1)[-1] == last][:n] or candidates[:n]
  return ", ".join(repr(m) for m in matches) if matches else "(none)"


class Interrupted(Exception):
  """Work that has nothing to checkpoint (an evaluation, an export) was stopped by a signal."""

  def __init__(self, signum: int):
    import signal

    super().__init__(f"stopped by {signal.Signals(signum).name}")
    self.signum = signum

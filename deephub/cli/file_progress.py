"""A progress bar over files and bytes for `deep utils` scans, on terminals only.

    with file_progress(files) as on_file:
      metadata.generate(files, on_file=on_file)

The scanner calls `on_file(path, outcome)` once per finished file, in any
order and from any thread; the bar advances by that file's size. Outcomes
starting with 'unreadable' are printed as their own `skipping PATH, ...`
line whether or not stderr is a terminal: they are results, not progress.
Off a terminal (CI, log files) nothing else is printed.
"""

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from deephub.io import filesystem

OnFile = Callable[[str, str], None]


@contextlib.contextmanager
def file_progress(files: Sequence[str], *, stream=None) -> Iterator[OnFile]:
  """Yields the per-file callback; the bar (if any) is closed when the block ends.

  Args:
    files: every file the scan will report, to size the bar in bytes.
    stream: where to draw; stderr by default.
  """
  stream = stream or sys.stderr
  lock = threading.Lock()  # Parallel scanners may report from several threads.
  bar, done = None, 0
  if _is_terminal(stream):
    from tqdm import tqdm  # Deferred: `deep utils` off a terminal does not need it.

    sizes = {path: filesystem.getsize(path) for path in files}
    bar = tqdm(
      total=sum(sizes.values()),
      unit="B",
      unit_scale=True,
      unit_divisor=1024,
      file=stream,
      dynamic_ncols=True,
      bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]",
    )

  def on_file(path: str, outcome: str) -> None:
    nonlocal done
    with lock:
      if outcome.startswith("unreadable"):
        line = f"skipping {path}, {outcome}"
        if bar is not None:
          bar.write(line, file=stream)
        else:
          print(line, file=stream, flush=True)
      if bar is not None:
        done += 1
        bar.set_postfix_str(f"{done}/{len(files)} files", refresh=False)
        bar.update(sizes.get(path, 0))

  try:
    yield on_file
  finally:
    if bar is not None:
      bar.close()


def _is_terminal(stream) -> bool:
  try:
    return stream.isatty()
  except (AttributeError, ValueError):  # Replaced or closed streams (pytest's capture).
    return False

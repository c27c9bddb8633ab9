"""A progress bar with items/s and ETA on a terminal, and nothing elsewhere.

rich (a dependency of Keras, so always installed with TensorFlow) draws it
on stderr when stderr is a TTY; log lines printed meanwhile go above the
bar. Off a TTY (CI logs, pipes) it stays silent: the commands print their
own summary line at the end.
"""

import sys
import threading
from types import TracebackType

from rich import progress as rich_progress


class _SpeedColumn(rich_progress.ProgressColumn):
  """`123.4 images/s` (blank until rich has measured a speed)."""

  def __init__(self, unit: str):
    super().__init__()
    self.unit = unit

  def render(self, task: rich_progress.Task):
    speed = task.finished_speed or task.speed
    if speed is None and task.completed and task.elapsed:
      # rich measures speed over its last samples; a run shorter than that has none.
      speed = task.completed / task.elapsed
    return rich_progress.Text("" if speed is None else f"{speed:,.1f} {self.unit}/s")


class ProgressBar:
  """`with ProgressBar('images', 'images') as bar: bar.start(total); bar.advance()`.

  `advance` may be called from several threads.
  """

  def __init__(self, description: str, unit: str, *, enabled: bool | None = None):
    self.enabled = sys.stderr.isatty() if enabled is None else enabled
    self._lock = threading.Lock()
    self._task = None
    self._progress = rich_progress.Progress(
      rich_progress.TextColumn("{task.description}"),
      rich_progress.BarColumn(),
      rich_progress.MofNCompleteColumn(),
      _SpeedColumn(unit),
      rich_progress.TextColumn("ETA"),
      rich_progress.TimeRemainingColumn(),
      console=rich_progress.Console(file=sys.stderr),
      disable=not self.enabled,
      # Log lines and prints go above the bar instead of through it.
      redirect_stderr=True,
      redirect_stdout=True,
    )
    self.description = description

  def __enter__(self) -> "ProgressBar":
    self._progress.start()
    return self

  def __exit__(self, kind: type | None, error: BaseException | None, traceback: TracebackType | None) -> None:
    self._progress.stop()

  def start(self, total: int, description: str | None = None) -> None:
    """Shows a new bar of `total` items (ending the previous one)."""
    with self._lock:
      self._task = self._progress.add_task(description or self.description, total=total)

  def advance(self, count: int = 1) -> None:
    self._progress.update(self._task, advance=count)

"""Training progress on the console: a live line on a terminal, log lines elsewhere.

On a terminal (stderr is a TTY) one tqdm line is redrawn in place with
step/total, a bar, the loss, steps/s, examples/s and the ETA; evaluation
results and any log record print as their own lines above it. Anywhere else
(CI, log files, `| tee`) the periodic `step N/M  loss ...` log lines stay,
since a redrawn line is unreadable in a file.

`Run` calls `update` after every compiled loop and `eval` after every
evaluation, and `loop.train_and_evaluate` enters it as a context around
training so the line is closed even when training raises.
"""

import contextlib
import logging
import math
import sys
from collections.abc import Callable, Iterator

from absl import logging as absl_logging


class LogProgress:
  """Non-terminal progress: the periodic absl INFO lines."""

  def __init__(self, *, total_steps: int, start_step: int, batch_size: int, clock: Callable[[], float]):
    self.total_steps, self.batch_size, self.clock = total_steps, batch_size, clock
    self.start_step, self.start_time = start_step, 0.0  # Set by start(), on entering.

  def start(self) -> None:
    """Restarts the rate clock: training starts now (after building and checkpoint 0)."""
    self.start_time = self.clock()

  def rate(self, step: int) -> float:
    """Steps per second since this run started."""
    return (step - self.start_step) / max(self.clock() - self.start_time, 1e-9)

  def update(self, step: int, loss: float, *, log: bool) -> None:
    """After a compiled loop ending at `step`; `log` is True when a log line is due."""
    if not log:
      return
    rate = self.rate(step)
    eta = (self.total_steps - step) / rate if rate else math.inf
    absl_logging.info(
      "step %d/%d  loss %.5g  %.3g steps/s  %.4g examples/s  ETA %s",
      step,
      self.total_steps,
      loss,
      rate,
      rate * self.batch_size,
      duration(eta),
    )

  def eval(self, step: int, scalars: dict[str, float]) -> None:
    """After an evaluation at `step`."""
    absl_logging.info("Eval at step %d: %s", step, format_scalars(scalars))

  def __enter__(self):
    self.start()
    return self

  def __exit__(self, *exc) -> None:
    pass


class BarProgress(LogProgress):
  """Terminal progress: one tqdm line redrawn in place, other output above it."""

  def __init__(self, *, total_steps: int, start_step: int, batch_size: int, clock: Callable[[], float]):
    super().__init__(total_steps=total_steps, start_step=start_step, batch_size=batch_size, clock=clock)
    self._bar = None
    self._redirect = contextlib.ExitStack()

  def __enter__(self):
    from tqdm import tqdm  # Deferred: only terminals need it.

    self.start()
    self._bar = tqdm(
      total=self.total_steps,
      initial=self.start_step,
      unit="step",
      file=sys.stderr,
      dynamic_ncols=True,
      # Our own rate and ETA (since the run started), not tqdm's smoothed
      # ones: steps arrive in chunks of steps_per_loop.
      # tqdm puts ", " before the postfix: after the elapsed time it reads well.
      bar_format="step {n_fmt}/{total_fmt} |{bar}| [{elapsed}{postfix}]",
    )
    self._redirect.enter_context(_logs_above(self._bar))
    return self

  def update(self, step: int, loss: float, *, log: bool) -> None:
    rate = self.rate(step)
    eta = (self.total_steps - step) / rate if rate else math.inf
    self._bar.set_postfix_str(
      f"loss {loss:.5g}  {rate:.3g} steps/s  {rate * self.batch_size:.4g} examples/s  ETA {duration(eta)}",
      refresh=False,
    )
    self._bar.update(step - self._bar.n)

  def eval(self, step: int, scalars: dict[str, float]) -> None:
    line = f"eval at step {step}: {format_scalars(scalars)}"
    if self._bar is not None:
      self._bar.write(line, file=sys.stderr)
    else:  # After training (the final evaluation): a plain line.
      print(line, file=sys.stderr, flush=True)

  def __exit__(self, *exc) -> None:
    self._redirect.close()
    self._bar.close()
    self._bar = None


def for_stderr(
  *, total_steps: int, start_step: int, batch_size: int, clock: Callable[[], float]
) -> LogProgress:
  """A live line when stderr is a terminal, else periodic log lines."""
  kind = BarProgress if _is_terminal(sys.stderr) else LogProgress
  return kind(total_steps=total_steps, start_step=start_step, batch_size=batch_size, clock=clock)


def _is_terminal(stream) -> bool:
  try:
    return stream.isatty()
  except (AttributeError, ValueError):  # Replaced or closed streams (pytest's capture).
    return False


class _AboveBar:
  """A stream that clears the bar, writes, then redraws it (for log handlers)."""

  def __init__(self, bar, stream):
    self._bar, self._stream = bar, stream

  def write(self, text: str) -> None:
    with self._bar.external_write_mode(file=self._stream):
      self._stream.write(text)

  def flush(self) -> None:
    self._stream.flush()


@contextlib.contextmanager
def _logs_above(bar) -> Iterator[None]:
  """Points the console log handlers (absl's, logging.basicConfig's) at `_AboveBar` meanwhile."""
  swapped = []
  for handler in logging.getLogger().handlers:
    target = getattr(handler, "python_handler", handler)  # absl wraps a StreamHandler.
    if isinstance(target, logging.StreamHandler) and target.stream in (sys.stderr, sys.stdout):
      swapped.append((target, target.setStream(_AboveBar(bar, target.stream))))
  try:
    yield
  finally:
    for target, stream in swapped:
      target.setStream(stream)


def format_scalars(scalars: dict[str, float]) -> str:
  """`loss = 0.5, accuracy = 0.9`."""
  return ", ".join(f"{k} = {v:.5g}" for k, v in scalars.items())


def duration(secs: float) -> str:
  """`H:MM:SS`, or `?` for an unknown (infinite) duration."""
  if not math.isfinite(secs):
    return "?"
  secs = int(secs)
  return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"

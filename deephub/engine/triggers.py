"""`PeriodicTrigger`: when periodic work is due, by steps crossed or seconds passed.

The actions (actions.py) and early stopping (early_stopping.py) ask one each
loop; the clock is passed in, so tests need not sleep.
"""

import time
from collections.abc import Callable


class PeriodicTrigger:
  """Fires when a step multiple is crossed or enough seconds have passed.

  Steps advance by `steps_per_loop`, so a step period fires on *crossing* a
  multiple of it, not on equality.
  """

  def __init__(
    self,
    *,
    every_steps: int | None = None,
    every_secs: float | None = None,
    start_step: int = 0,
    clock: Callable[[], float] = time.monotonic,
  ):
    """Args:
    every_steps: fire on crossing a multiple of this step count.
    every_secs: fire when this many seconds passed since the last firing.
    start_step: step the run starts (or resumes) from.
    clock: returns seconds; `time.monotonic` unless testing.
    """
    self.every_steps = every_steps
    self.every_secs = every_secs
    self._clock = clock
    self._last_step = start_step
    self._last_time = clock()

  def __call__(self, step: int) -> bool:
    """Returns True (and restarts the period) when the trigger fires at `step`."""
    fired = False
    if self.every_steps and step // self.every_steps > self._last_step // self.every_steps:
      fired = True
    if self.every_secs is not None and self._clock() - self._last_time >= self.every_secs:
      fired = True
    if fired:
      self.reset(step)
    return fired

  def reset(self, step: int) -> None:
    """Marks work done at `step` (e.g. a final save outside the trigger)."""
    self._last_step = step
    self._last_time = self._clock()

"""PeriodicTrigger: step periods fire on crossing a multiple, second periods restart as they fire."""

import pytest

from deephub.engine.triggers import PeriodicTrigger


class FakeClock:
  """Seconds that pass only when a test sets `now` (the actions' tests use it too)."""

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


@pytest.mark.parametrize(
  "every_steps, start, steps, fired",
  [
    (10, 0, [5, 10, 15, 20], [False, True, False, True]),
    (10, 0, [7, 14, 21, 28, 35], [False, True, True, False, True]),  # Crossing, not equality.
    (10, 0, [100], [True]),  # One jump over several multiples fires once.
    (10, 10, [10, 19, 20], [False, False, True]),  # Resumed at a multiple: no refire.
    (1, 0, [1, 2, 3], [True, True, True]),
    (None, 0, [1, 100], [False, False]),
  ],
)
def test_step_trigger(every_steps, start, steps, fired):
  trigger = PeriodicTrigger(every_steps=every_steps, start_step=start, clock=FakeClock())
  assert [trigger(step) for step in steps] == fired


def test_seconds_trigger_restarts_its_period():
  clock = FakeClock()
  trigger = PeriodicTrigger(every_secs=60, clock=clock)
  clock.now = 59
  assert not trigger(1)
  clock.now = 60
  assert trigger(2)
  clock.now = 100
  assert not trigger(3)
  clock.now = 121
  assert trigger(4)


def test_reset_marks_work_done():
  clock = FakeClock()
  trigger = PeriodicTrigger(every_steps=5, every_secs=10, clock=clock)
  clock.now = 9
  trigger.reset(4)
  clock.now = 18
  assert not trigger(4)
  assert trigger(5)

"""Controller: the outer loop over compiled train loops, with fake loops, steps and actions."""

import numpy as np
import pytest

from deephub.engine.controller import Controller, Loop, Outcome, StopReason
from deephub.engine.steps import FINITE_KEY


class FakeStep:
  """A global_step: `numpy()` reads it, the fake loop advances it."""

  def __init__(self, value=0):
    self.value = value

  def numpy(self):
    return np.int64(self.value)


class FakeLoop:
  """A train loop: loss = the step number; NaN at the steps in `bad`."""

  def __init__(self, step: FakeStep, bad=()):
    self.step, self.bad, self.calls = step, set(bad), []

  def __call__(self, iterator, num_steps):
    n = int(num_steps)
    self.calls.append(n)
    steps = np.arange(self.step.value + 1, self.step.value + n + 1)
    self.step.value += n
    loss = np.where(np.isin(steps, list(self.bad)), np.nan, steps.astype(np.float32))
    return {"loss": FakeTensor(loss), FINITE_KEY: FakeTensor(np.isfinite(loss).astype(np.float32))}


class FakeTensor:
  def __init__(self, value):
    self.value = value

  def numpy(self):
    return self.value


class Recorder:
  """An action that records the loops it saw and returns `reason` at `stop_at`."""

  def __init__(self, stop_at=None, reason=None):
    self.loops: list[Loop] = []
    self.stop_at, self.reason = stop_at, reason

  def __call__(self, loop):
    self.loops.append(loop)
    return self.reason if loop.last_step == self.stop_at else None


def controller(step, loop, actions, **kwargs):
  return Controller(
    train_loop=loop, global_step=step, steps_per_loop=4, actions=actions, clock=lambda: 0.0, **kwargs
  )


def test_runs_loops_of_steps_per_loop_to_total_steps():
  step = FakeStep()
  loop, seen = FakeLoop(step), Recorder()
  outcome = controller(step, loop, [seen]).train(iter(()), 10)
  assert loop.calls == [4, 4, 2]  # The last loop is shorter.
  assert [(r.first_step, r.last_step, r.steps) for r in seen.loops] == [(1, 4, 4), (5, 8, 4), (9, 10, 2)]
  assert outcome == Outcome({"loss": 10.0}, StopReason.FINISHED)
  assert all(r.total_steps == 10 and FINITE_KEY not in r.logs for r in seen.loops)


def test_resumes_from_the_global_step_and_trains_nothing_when_done():
  step = FakeStep(10)
  loop = FakeLoop(step)
  assert controller(step, loop, []).train(iter(()), 10) == Outcome({}, StopReason.FINISHED)
  assert loop.calls == []


@pytest.mark.parametrize("reason", [StopReason.EARLY_STOPPED, StopReason.PREEMPTED])
def test_an_action_returning_a_reason_stops_after_that_loop(reason):
  step = FakeStep()
  first, stopper, last = Recorder(), Recorder(stop_at=8, reason=reason), Recorder()
  outcome = controller(step, FakeLoop(step), [first, stopper, last]).train(iter(()), 20)
  assert outcome.stop_reason is reason and step.value == 8
  assert [r.last_step for r in first.loops] == [4, 8]
  assert [r.last_step for r in last.loops] == [4]  # Later actions skip the stopping loop.


def test_non_finite_loop_stops_before_any_action_by_default():
  step = FakeStep()
  seen = Recorder()
  outcome = controller(step, FakeLoop(step, bad={6}), [seen]).train(iter(()), 20)
  assert outcome.stop_reason is StopReason.NON_FINITE
  assert [r.last_step for r in seen.loops] == [4]


def test_rolled_back_returns_and_train_again_goes_on_from_the_restored_step():
  step = FakeStep()
  bad_loops = []

  def roll_back(loop):
    bad_loops.append((loop.first_step, loop.last_step, list(loop.finite)))
    step.value = 4  # What restoring checkpoint 4 does to the global step.
    return StopReason.ROLLED_BACK

  loop = FakeLoop(step, bad={6})
  run = controller(step, loop, [], on_non_finite=roll_back)
  assert run.train(iter(()), 12).stop_reason is StopReason.ROLLED_BACK
  assert bad_loops == [(5, 8, [True, False, True, True])]
  loop.bad.clear()
  assert run.train(iter(()), 12).stop_reason is StopReason.FINISHED
  assert loop.calls == [4, 4, 4, 4] and step.value == 12

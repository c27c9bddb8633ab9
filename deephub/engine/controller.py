"""The outer training loop: compiled loops of `steps_per_loop` steps, periodic actions between them.

`Controller.train` is the whole outer loop. Each iteration runs one compiled
`train_loop(iterator, num_steps)` (steps.py), fetches its per-step logs (the
one sync point), then hands the loop's record to each action in turn
(actions.py: summaries, checkpoints, evaluation, progress, stop votes). An
action that returns a `StopReason` ends `train()`, which returns it in the
`Outcome`: nothing here is global, so callers read how training ended from
the return value.
"""

import dataclasses
import enum
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from deephub.engine.steps import FINITE_KEY


class StopReason(enum.Enum):
  """Why `Controller.train` returned."""

  FINISHED = "finished"  # total_steps reached.
  EARLY_STOPPED = "early-stopped"  # Early stopping or the evaluation callback.
  PREEMPTED = "preempted"  # A stop signal (SIGTERM, Ctrl-C) on some worker.
  NON_FINITE = "non-finite"  # NaN/Inf in a loop, and nothing recovered from it.
  ROLLED_BACK = "rolled-back"  # NaN/Inf, and the last good checkpoint was restored: train() again.


@dataclasses.dataclass(frozen=True)
class Loop:
  """One compiled loop as the actions see it: which steps ran, their logs, how long it took."""

  first_step: int
  last_step: int  # The global step after the loop.
  total_steps: int
  # Per-step values (one array entry per step) of the train loop's outputs.
  logs: Mapping[str, np.ndarray]
  # Per step: True when its loss and gradients were finite.
  finite: np.ndarray
  secs: float

  @property
  def steps(self) -> int:
    return self.last_step - self.first_step + 1

  def scalars(self) -> dict[str, float]:
    """The last step's values."""
    return {name: float(values[-1]) for name, values in self.logs.items()}


# An action runs after every finite loop; a StopReason ends training there.
Action = Callable[[Loop], "StopReason | None"]


@dataclasses.dataclass(frozen=True)
class Outcome:
  """How `Controller.train` ended: the last loop's train scalars and the reason."""

  scalars: dict[str, float]
  stop_reason: StopReason


class Controller:
  """Runs compiled train loops until `total_steps`, calling the actions after each."""

  def __init__(
    self,
    *,
    train_loop: Callable[[object, tf.Tensor], Mapping[str, tf.Tensor]],
    global_step: tf.Variable,
    steps_per_loop: int,
    actions: Sequence[Action],
    clock: Callable[[], float] = time.monotonic,
    on_non_finite: Callable[[Loop], StopReason] | None = None,
  ):
    """Args:
    train_loop: `train_loop(iterator, num_steps)` (steps.make_train_loop):
      runs the steps, returns per-step logs with steps.FINITE_KEY.
    global_step: the step counter the train loop advances.
    steps_per_loop: the most steps one compiled call runs.
    actions: called in order after each finite loop.
    clock: seconds; injectable for tests.
    on_non_finite: called on a loop with NaN/Inf values; returns
      ROLLED_BACK after restoring a good state, or NON_FINITE (or raises).
      None: every such loop ends training with NON_FINITE.
    """
    self.train_loop = train_loop
    self.global_step = global_step
    self.steps_per_loop = steps_per_loop
    self.actions = list(actions)
    self.clock = clock
    self.on_non_finite = on_non_finite or (lambda loop: StopReason.NON_FINITE)

  def train(self, iterator, total_steps: int) -> Outcome:
    """Trains from the current global step to `total_steps` unless an action stops it first."""
    step = int(self.global_step.numpy())
    scalars: dict[str, float] = {}
    while step < total_steps:
      num_steps = min(self.steps_per_loop, total_steps - step)
      start = self.clock()
      # The count is a tensor, so a shorter last loop does not retrace.
      outputs = self.train_loop(iterator, tf.constant(num_steps))
      logs = {name: value.numpy() for name, value in outputs.items()}  # Sync point.
      finite = logs.pop(FINITE_KEY) > 0.999  # The mean over replicas of 1.0 (finite) or 0.0.
      loop = Loop(
        first_step=step + 1,
        last_step=step + num_steps,
        total_steps=total_steps,
        logs=logs,
        finite=finite,
        secs=max(self.clock() - start, 1e-9),
      )
      step = loop.last_step
      scalars = loop.scalars()
      if not np.all(finite):
        return Outcome(scalars, self.on_non_finite(loop))
      for action in self.actions:
        reason = action(loop)
        if reason is not None:
          return Outcome(scalars, reason)
    return Outcome(scalars, StopReason.FINISHED)

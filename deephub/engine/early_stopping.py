"""Early stopping on an eval metric, as Estimator's `stop_if_no_decrease_hook`.

The rule (from `tf.estimator.experimental.stop_if_no_decrease_hook`): walk
the evaluations in step order, skipping those before `min_steps`, track the
best value, and stop as soon as an evaluation comes `steps_without_decrease`
or more steps after the best one. The evaluations include those of earlier
runs in the same model_dir (read back from `eval/`), so a resumed run keeps
counting where it stopped.
"""

import ml_collections
from absl import logging

from deephub.engine.event_files import History, is_better, read_scalars
from deephub.engine.triggers import PeriodicTrigger
from deephub.errors import UserError


def stop_reason(
  history: History,
  *,
  metric: str,
  steps_without_improvement: int,
  min_steps: int,
  higher_is_better: bool = False,
) -> str | None:
  """Returns why training should stop given the eval history, or None to go on.

  Raises:
    UserError: an evaluation lacks `metric`.
  """
  best, best_step = None, None
  for step, scalars in sorted(history.items()):
    if step < min_steps:
      continue
    if metric not in scalars:
      raise UserError(
        f"train.early_stopping_metric is {metric!r} but the evaluation at step {step} has only "
        f"{', '.join(sorted(scalars))}; use one of those"
      )
    if is_better(scalars[metric], best, higher_is_better=higher_is_better):
      best, best_step = scalars[metric], step
    if step - best_step >= steps_without_improvement:
      return (
        f"no {'increase' if higher_is_better else 'decrease'} in eval {metric} for {step - best_step} "
        f"steps (best {best:.5g} at step {best_step}, now step {step}); "
        f"train.early_stopping_steps_without_decrease is {steps_without_improvement}"
      )
  return None


class EarlyStopping:
  """Checks `stop_reason` periodically over the evaluations recorded so far."""

  def __init__(
    self, train: ml_collections.ConfigDict, *, eval_dir: str | None, steps_per_epoch: int, start_step: int
  ):
    """Args:
    train: the `train` config section (early_stopping_* keys).
    eval_dir: where this model_dir's evaluations write their scalars; None
      when the run does not evaluate.
    steps_per_epoch: the check period when early_stopping_hook_run_every_steps is None.
    start_step: the step this run starts from.

    Raises:
      UserError: early stopping is on but its settings are incomplete.
    """
    self.metric = train.early_stopping_metric
    self.steps_without_improvement = train.early_stopping_steps_without_decrease
    self.min_steps = train.early_stopping_min_steps
    self.higher_is_better = train.early_stopping_higher_is_better
    self._history: History = {}
    self._trigger = None
    if not self.metric:
      return
    if eval_dir is None:
      raise UserError(
        f"train.early_stopping_metric is {self.metric!r} but train.eval_feeder has no file_patterns; "
        "set them, or set the metric to '' to disable early stopping"
      )
    if self.steps_without_improvement is None or self.steps_without_improvement < 1:
      raise UserError(
        f"train.early_stopping_metric is {self.metric!r} but train.early_stopping_steps_without_decrease "
        f"is {self.steps_without_improvement}; set it to 1 or more"
      )
    every = train.early_stopping_hook_run_every_steps or steps_per_epoch
    if every < 1:
      raise UserError(f"train.early_stopping_hook_run_every_steps is {every}; set it to 1 or more")
    self._trigger = PeriodicTrigger(every_steps=every, start_step=start_step)
    self._history = read_scalars(eval_dir)

  def record(self, step: int, scalars: dict[str, float]) -> None:
    """Adds an evaluation of this run."""
    self._history[step] = dict(scalars)

  def __call__(self, step: int) -> str | None:
    """Returns the reason to stop at `step` when the check is due and says stop."""
    if self._trigger is None or not self._trigger(step):
      return None
    reason = stop_reason(
      self._history,
      metric=self.metric,
      steps_without_improvement=self.steps_without_improvement,
      min_steps=self.min_steps,
      higher_is_better=self.higher_is_better,
    )
    if reason:
      logging.info("Early stopping at step %d: %s", step, reason)
    return reason

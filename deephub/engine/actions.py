"""The periodic work between compiled loops: one small class per behaviour.

Each action is called by the Controller with the `Loop` just run and returns
None, or a `StopReason` to end training there. Periodic ones are driven by
a `PeriodicTrigger` (triggers.py); every clock is passed in, so tests need
not sleep. The order the Controller calls them in (schedule.py) is today's:
summaries, checkpoint, evaluation, progress, early-stopping vote, stop-signal
vote.

- `WriteSummaries`: the per-step train scalars, every `save_summary_steps`.
- `SaveCheckpoint`: a checkpoint every `save_checkpoint_steps` / `_secs`.
- `Evaluate`: an evaluation pass, its summaries, the exporters, early
  stopping's history and the `on_evaluation` callback.
- `LogProgress`: the progress line or log lines (progress.py).
- `StopEarly` / `StopOnSignal`: stop conditions, each decided once for all
  workers (a worker stopping alone would block the others' all-reduce).
- `RollBack`: what a loop with NaN/Inf values does (train.nan_policy).
"""

import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import tensorflow as tf
from absl import logging

from deephub.engine.checkpoint import CheckpointSaver, NonFiniteValuesError
from deephub.engine.controller import Loop, StopReason
from deephub.engine.input_state import INPUT_STATE_KEY
from deephub.engine.triggers import PeriodicTrigger
from deephub.errors import UserError
from deephub.write_errors import explain as explain_write_error

# Called with (step, eval scalars) after each evaluation before the last step;
# True asks training to stop there (hyperparameter search prunes trials with it).
EvaluationCallback = Callable[[int, Mapping[str, float]], bool]
# True on every worker when the argument is True on any (preemption.any_worker).
Vote = Callable[[bool], bool]


class NonFiniteLossError(UserError, RuntimeError):
  """The loss became NaN or Inf; no checkpoint of that state was written.

  A UserError: the fix is the user's (learning rate, data, nan_policy), so
  entry points print its message as one line.
  """


class SaveCheckpoint:
  """Writes a checkpoint when its trigger fires; owns "the last checkpoint" for every message."""

  def __init__(self, saver: CheckpointSaver, *, trigger: PeriodicTrigger, global_step, is_chief: bool):
    """Args:
    saver: writes `model.ckpt-N` into model_dir.
    trigger: save_checkpoint_steps / save_checkpoint_secs.
    global_step: the step counter (read by `save_progress` after a failed loop).
    is_chief: only the chief writes; other workers only track the step.
    """
    self.saver = saver
    self.trigger = trigger
    self.global_step = global_step
    self.is_chief = is_chief
    step = int(global_step.numpy())
    # The step of the newest checkpoint of this run (None: none yet).
    self.saved_step: int | None = step if saver.latest() else None

  def __call__(self, loop: Loop) -> None:
    if self.trigger(loop.last_step):
      self.save(loop.last_step)

  def save(self, step: int) -> None:
    """Writes a checkpoint of `step` unless there is one.

    Raises:
      UserError: the write failed in the destination (disk full, read-only);
        what it left behind is removed, the last good checkpoint stays.
      NonFiniteValuesError: a value is NaN or Inf (nothing written).
    """
    if self.saved_step == step:
      return
    if self.is_chief:
      try:
        self.saver.save(step)
      except (OSError, tf.errors.OpError) as error:
        _discard_failed_save(self.saver, step)
        model_dir = self.saver.model_dir
        path = os.path.join(model_dir, f"model.ckpt-{step}")
        explained = explain_write_error(error, model_dir=model_dir, step=self.saved_step, path=path)
        if explained is None:
          raise
        raise explained from None
    self.saved_step = step

  def save_progress(self) -> None:
    """After a failed loop: checkpoint the steps that completed, when their values are finite."""
    try:
      self.save(int(self.global_step.numpy()))
    except NonFiniteValuesError as error:  # Keep the last good checkpoint.
      logging.warning("Not saving progress: %s", error)

  @contextlib.contextmanager
  def explained_writes(self) -> Iterator[None]:
    """Turns a write failed in the destination into a UserError naming it and the last checkpoint."""
    try:
      yield
    except (OSError, tf.errors.OpError) as error:
      explained = explain_write_error(error, model_dir=self.saver.model_dir, step=self.saved_step)
      if explained is None:
        raise
      raise explained from None


class WriteSummaries:
  """Writes the train scalars of the steps that are multiples of `every_steps`."""

  def __init__(self, writer, *, every_steps: int, explained_writes=contextlib.nullcontext):
    """Args:
    writer: a ScalarWriter (summaries.py) or anything with its interface.
    every_steps: train.save_summary_steps.
    explained_writes: a context that explains failed writes (SaveCheckpoint's).
    """
    self.writer = writer
    self.every_steps = every_steps
    self.explained_writes = explained_writes

  def __call__(self, loop: Loop) -> None:
    with self.explained_writes():
      write_train_summaries(
        self.writer, loop.logs, loop.first_step, self.every_steps, steps_per_sec=loop.steps / loop.secs
      )


def write_train_summaries(
  writer, logs: Mapping[str, np.ndarray], first_step: int, every_steps: int, *, steps_per_sec: float
) -> None:
  """Writes the per-step logs of one loop at steps that are multiples of `every_steps`."""
  due = [i for i in range(len(logs["loss"])) if (first_step + i) % every_steps == 0]
  for i in due:
    scalars = {name: float(values[i]) for name, values in logs.items()}
    if i == due[-1]:
      scalars["global_step/sec"] = steps_per_sec
    writer.write_scalars(first_step + i, scalars)
  writer.flush()


class Evaluate:
  """Evaluates on the chief when due; exports, feeds early stopping and the callback."""

  def __init__(
    self,
    *,
    run_pass: Callable[[], Mapping[str, tf.Tensor] | None],
    trigger: PeriodicTrigger,
    at_every_checkpoint: bool,
    save: SaveCheckpoint,
    writer,
    exporters,
    early_stopping,
    progress,
    total_steps: int,
    on_evaluation: EvaluationCallback | None = None,
    is_chief: bool = True,
    stop_signal: Callable[[], int] = lambda: signal.SIGTERM,
  ):
    """Args:
    run_pass: one evaluation pass over the eval data; None when a stop
      signal ended it early (steps.make_evaluate with should_stop).
    trigger: validation_steps / validation_secs.
    at_every_checkpoint: also evaluate after each checkpoint the save
      action writes (validation_secs None, as Estimator's throttle did).
    save: the checkpoint action; an evaluation belongs to a checkpoint.
    writer: the `eval/` ScalarWriter.
    exporters: Exporters (exporters.py): after each evaluation.
    early_stopping: EarlyStopping (early_stopping.py): records each evaluation.
    progress: the progress display (progress.py).
    total_steps: the last step; the callback is not asked after it.
    on_evaluation: see EvaluationCallback.
    is_chief: only the chief evaluates.
    stop_signal: the signal that stopped a pass, for the warning.
    """
    self.run_pass = run_pass
    self.trigger = trigger
    self.at_every_checkpoint = at_every_checkpoint
    self.save = save
    self.writer = writer
    self.exporters = exporters
    self.early_stopping = early_stopping
    self.progress = progress
    self.total_steps = total_steps
    self.on_evaluation = on_evaluation
    self.is_chief = is_chief
    self.stop_signal = stop_signal
    self.evaluated_step: int | None = None
    self.results: dict[str, float] = {}
    self.asked_to_stop = False  # Set when `on_evaluation` asked to stop.

  def __call__(self, loop: Loop) -> None:
    if not self.is_chief:
      return
    step = loop.last_step
    # The trigger is asked every loop, so its period restarts as it fires.
    due = self.trigger(step)
    if due or (self.at_every_checkpoint and self.save.saved_step == step):
      self.evaluate(step)

  def evaluate(self, step: int) -> bool:
    """Evaluates `step`; False when a stop signal ended the pass early (nothing written)."""
    self.save.save(step)  # Eval summaries belong to a checkpoint's global step.
    results = self.run_pass()
    if results is None:
      logging.warning("Evaluation at step %d stopped by %s", step, signal.Signals(self.stop_signal()).name)
      return False
    scalars = {k: float(v) for k, v in results.items()}
    with self.save.explained_writes():
      self.writer.write_scalars(step, scalars)
      self.writer.flush()
    self.evaluated_step = step
    self.results = scalars
    self.exporters.after_eval(step, scalars, self.save.saver.latest())
    self.early_stopping.record(step, scalars)
    # Not after the last step: there is nothing left to stop.
    if self.on_evaluation is not None and step < self.total_steps and self.on_evaluation(step, scalars):
      logging.info("Stopping at step %d: the evaluation callback asked to stop", step)
      self.asked_to_stop = True
    self.progress.eval(step, scalars)
    return True


class LogProgress:
  """Updates the progress display every loop; a log line is due on its trigger and at the end."""

  def __init__(self, progress, *, trigger: PeriodicTrigger):
    self.progress = progress
    self.trigger = trigger

  def __call__(self, loop: Loop) -> None:
    # Called every loop: the trigger advances, and a terminal line redraws each time.
    due = self.trigger(loop.last_step) or loop.last_step == loop.total_steps
    self.progress.update(loop.last_step, float(loop.logs["loss"][-1]), log=due)


class StopEarly:
  """Stops when early stopping or the evaluation callback says so, on every worker at once."""

  def __init__(self, early_stopping: Callable[[int], str | None], evaluate: Evaluate | None, *, vote: Vote):
    """Args:
    early_stopping: returns why to stop at a step, or None (early_stopping.py).
    evaluate: the evaluation action, whose callback may ask to stop; None without one.
    vote: shares the decision: only the chief evaluates, and a worker that
      went on alone would block in its next all-reduce.
    """
    self.early_stopping = early_stopping
    self.evaluate = evaluate
    self.vote = vote

  def __call__(self, loop: Loop) -> StopReason | None:
    asked = self.evaluate is not None and self.evaluate.asked_to_stop
    if self.vote(bool(self.early_stopping(loop.last_step)) or asked):
      return StopReason.EARLY_STOPPED
    return None


class StopOnSignal:
  """Stops when any worker received SIGTERM or Ctrl-C; the final checkpoint follows (preemption.py)."""

  def __init__(self, requested: Callable[[], bool], *, vote: Vote):
    self.requested = requested
    self.vote = vote

  def __call__(self, loop: Loop) -> StopReason | None:
    if not self.vote(self.requested()):
      return None
    logging.warning(
      "Preempted at step %d: saving a checkpoint; rerun the same command to continue", loop.last_step
    )
    return StopReason.PREEMPTED


class RollBack:
  """On NaN/Inf: restores the last good checkpoint (nan_policy 'rollback'), else stops with the fix."""

  def __init__(self, save: SaveCheckpoint, *, policy: str, max_rollbacks: int, num_workers: int):
    self.save = save
    self.policy = policy
    self.max_rollbacks = max_rollbacks
    self.num_workers = num_workers
    self.rollbacks = 0

  def __call__(self, loop: Loop) -> StopReason:
    """Returns ROLLED_BACK after restoring.

    Raises:
      NonFiniteLossError: no rollback allowed; names the first bad step.
    """
    bad = loop.first_step + int(np.argmin(loop.finite))
    loss = loop.logs["loss"][bad - loop.first_step]
    what = f"loss is {loss}" if not np.isfinite(loss) else "a gradient is NaN or Inf"
    message = f"{what} at step {bad} (steps {loop.first_step}..{loop.last_step})"
    if (
      self.policy == "rollback"
      and self.rollbacks < self.max_rollbacks
      and self.save.saved_step is not None
      # Each worker would have to restore the chief's checkpoint: one worker only.
      and self.num_workers == 1
    ):
      self.rollbacks += 1
      saver = self.save.saver
      # Weights and optimizer only: the input keeps going past the bad batches.
      saver.restore(saver.latest(), keys=[k for k in saver.entries if k != INPUT_STATE_KEY])
      logging.warning(
        "%s; rolled back to checkpoint step %d (rollback %d of %d), continuing on the next batches",
        message,
        int(self.save.global_step.numpy()),
        self.rollbacks,
        self.max_rollbacks,
      )
      return StopReason.ROLLED_BACK
    raise NonFiniteLossError(
      f"{message}; the last checkpoint (step {self.save.saved_step}) is untouched: "
      "lower model.learning_rate, check the data, or set train.nan_policy 'rollback'"
    )


def _discard_failed_save(saver: CheckpointSaver, step: int) -> None:
  """Removes what a failed save of `step` left: temp folders, and its files unless the state file lists it."""
  try:
    saver.remove_partial_saves()
    prefix = os.path.join(saver.model_dir, f"model.ckpt-{step}")
    if saver.latest() != prefix:
      for path in tf.io.gfile.glob(f"{prefix}.*"):
        tf.io.gfile.remove(path)
  except (OSError, tf.errors.OpError) as error:  # Cleaning up must not hide why the save failed.
    logging.warning("Could not remove the partial checkpoint %d: %s", step, error)

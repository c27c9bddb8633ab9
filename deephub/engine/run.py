"""One training run between compiled loops: the host side of the outer loop.

`Run` holds what changes from loop to loop (the step, the periodic triggers,
the summary writers, the rollback count) and does the host work after each
compiled call: the non-finite check, summaries, checkpoints, evaluation,
early stopping, preemption and logging. `loop.train_and_evaluate` builds it.
"""

import contextlib
import os
import signal
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf
from absl import logging

from deephub.engine import distribute, preemption, progress
from deephub.engine.early_stopping import EarlyStopping
from deephub.engine.hooks import PeriodicTrigger
from deephub.engine.input_state import INPUT_STATE_KEY
from deephub.engine.metrics_csv import write_metrics_csv
from deephub.engine.steps import FINITE_KEY
from deephub.engine.summaries import ScalarWriter
from deephub.errors import UserError
from deephub.write_errors import explain as explain_write_error

# Called with (step, eval scalars) after each evaluation before the last step;
# True asks training to stop there (hyperparameter search prunes trials with it).
EvaluationCallback = Callable[[int, Mapping[str, float]], bool]


class NonFiniteLossError(UserError, RuntimeError):
  """The loss became NaN or Inf; no checkpoint of that state was written.

  A UserError: the fix is the user's (learning rate, data, nan_policy), so
  entry points print its message as one line.
  """


class Run:
  """The state of one training run between compiled loops: step, triggers, writers."""

  def __init__(
    self,
    config,
    *,
    clock,
    saver,
    global_step,
    steps_per_epoch,
    batch_size,
    eval_feeder,
    placement,
    train_loop,
    evaluate,
    exporters,
    on_evaluation: EvaluationCallback | None = None,
  ):
    train = config.train
    self.train_config = train
    self.model_type = config.model.type
    self.autograph = config.runtime.autograph
    self.clock = clock
    self.saver = saver
    self.global_step = global_step
    self.placement = placement
    self.batch_size = batch_size
    self.eval_feeder = eval_feeder
    self.train_loop = train_loop
    self.evaluate = evaluate
    self.step = int(global_step.numpy())
    self.total_steps = train.epochs * steps_per_epoch
    self.saved_step = self.step if saver.latest() else None
    self.evaluated_step = None
    self.results = {}
    self.rollbacks = 0
    self.preempted = False
    self.exporters = exporters
    self.on_evaluation = on_evaluation
    self.stop_after_eval = False  # Set when `on_evaluation` asked to stop.
    self.early_stopping = EarlyStopping(
      train,
      eval_dir=os.path.join(saver.model_dir, "eval") if eval_feeder else None,
      steps_per_epoch=steps_per_epoch,
      start_step=self.step,
    )
    model_dir = saver.model_dir
    # Only the chief writes into model_dir; other workers get writers that write nothing.
    self.train_writer = distribute.chief_writer(placement, model_dir)
    self.eval_writer = distribute.chief_writer(placement, os.path.join(model_dir, "eval"))
    self.save_trigger = PeriodicTrigger(
      every_steps=train.save_checkpoint_steps,
      every_secs=train.save_checkpoint_secs,
      start_step=self.step,
      clock=clock,
    )
    self.eval_trigger = PeriodicTrigger(
      every_steps=train.validation_steps, every_secs=train.validation_secs, start_step=self.step, clock=clock
    )
    self.log_trigger = PeriodicTrigger(
      every_steps=train.log_step_count_steps, start_step=self.step, clock=clock
    )
    if self.saved_step is not None and placement.is_chief:
      # A resume: TensorBoard drops what a killed run wrote past this
      # checkpoint; the restored step's own summaries stay.
      with self._writing():
        self.train_writer.write_session_start(self.step + 1)
        if eval_feeder is not None:
          self.eval_writer.write_session_start(self.step + 1)
    # A live line on a terminal, else log lines; entered around `train()` by the loop.
    self.progress = progress.for_stderr(
      total_steps=self.total_steps, start_step=self.step, batch_size=batch_size, clock=clock
    )
    logging.info(
      "Training %s to step %d (%d epochs x %d steps) into %s",
      config.model.type,
      self.total_steps,
      train.epochs,
      steps_per_epoch,
      model_dir,
    )

  def train(self, iterator) -> None:
    """Runs compiled loops until total_steps, doing host work between them."""
    train = self.train_config
    while self.step < self.total_steps:
      num_steps = min(train.steps_per_loop, self.total_steps - self.step)
      loop_start = self.clock()
      with self._explained_python_control_flow():
        outputs = self.train_loop(iterator, tf.constant(num_steps))
      logs = {k: v.numpy() for k, v in outputs.items()}  # Sync point.
      loop_secs = max(self.clock() - loop_start, 1e-9)
      first = self.step + 1
      self.step += num_steps
      finite = logs.pop(FINITE_KEY) > 0.999  # The mean over replicas of 1.0 (finite) or 0.0.
      if not np.all(finite):
        self._non_finite(logs, finite, first)
        continue
      with self._writing():
        write_train_summaries(
          self.train_writer, logs, first, train.save_summary_steps, steps_per_sec=num_steps / loop_secs
        )
      if self.save_trigger(self.step):
        self.save()
      if self.eval_feeder is not None and self.placement.is_chief and self.eval_trigger(self.step):
        self.run_eval()
      # Called every loop: the trigger advances, and a terminal line redraws each time.
      due = self.log_trigger(self.step) or self.step == self.total_steps
      self.progress.update(self.step, float(logs["loss"][-1]), log=due)
      # Only the chief evaluates, so its decision is shared: a worker that went
      # on alone would block in its next all-reduce.
      if preemption.any_worker(
        self.placement.strategy,
        self.placement.cluster.num_workers,
        bool(self.early_stopping(self.step)) or self.stop_after_eval,
      ):
        break  # Then the final checkpoint, evaluation and exports, as at the end.
      if preemption.stop_requested(self.placement.strategy, self.placement.cluster.num_workers):
        logging.warning(
          "Preempted at step %d: saving a checkpoint; rerun the same command to continue", self.step
        )
        self._mark_preempted()
        break

  def finish(self) -> dict[str, float]:
    """Final checkpoint and evaluation; returns the last eval scalars."""
    self.save()
    with self._writing():
      self.train_writer.close()
    if (
      not self.preempted
      and self.eval_feeder is not None
      and self.placement.is_chief
      and self.evaluated_step != self.step
      and not self.run_eval()
    ):
      self._mark_preempted()  # A stop signal during the final evaluation: the rerun evaluates.
    with self._writing():
      self.eval_writer.close()
    if self.preempted:  # The restart evaluates and exports when it finishes.
      logging.info("Stopped at global_step %d in %s", self.step, self.saver.model_dir)
      return self.results
    if self.placement.is_chief:
      self.exporters.at_end(self.step)
      write_metrics_csv(self.saver.model_dir)
    logging.info("Finished at global_step %d in %s", self.step, self.saver.model_dir)
    return self.results

  def save(self) -> None:
    """Writes a checkpoint of the current step unless there is one.

    Raises:
      UserError: the write failed in the destination (disk full, read-only);
        what it left behind is removed, the last good checkpoint stays.
    """
    if self.saved_step != self.step:
      if self.placement.is_chief:
        try:
          self.saver.save(self.step)
        except (OSError, tf.errors.OpError) as error:
          _discard_failed_save(self.saver, self.step)
          explained = explain_write_error(
            error,
            model_dir=self.saver.model_dir,
            step=self.saved_step,
            path=os.path.join(self.saver.model_dir, f"model.ckpt-{self.step}"),
          )
          if explained is None:
            raise
          raise explained from None
      self.saved_step = self.step

  @contextlib.contextmanager
  def _explained_python_control_flow(self):
    """Turns the trace error of a Python `if`/`for` on a tensor, without AutoGraph, into its fix."""
    try:
      yield
    except tf.errors.OperatorNotAllowedInGraphError as error:
      if self.autograph:
        raise
      what = " ".join(str(error).split()).split(". ")[0]
      raise UserError(
        f"model {self.model_type} branches or loops in Python on a tensor ({what}); set "
        "runtime.autograph: True (--config.runtime.autograph=True) so the step converts that code"
      ) from None

  @contextlib.contextmanager
  def _writing(self):
    """Turns a write failed in the destination into a UserError naming it and the last checkpoint."""
    try:
      yield
    except (OSError, tf.errors.OpError) as error:
      explained = explain_write_error(error, model_dir=self.saver.model_dir, step=self.saved_step)
      if explained is None:
        raise
      raise explained from None

  def _mark_preempted(self) -> None:
    self.preempted = True
    preemption.mark_stopped()

  def save_progress(self) -> None:
    """After a failed loop: checkpoint the steps that completed, when finite."""
    self.step = int(self.global_step.numpy())
    try:
      self.save()
    except RuntimeError as error:  # Non-finite values: keep the last good checkpoint.
      logging.warning("Not saving progress: %s", error)

  def run_eval(self) -> bool:
    """Evaluates the current step; False when a stop signal ended the pass early (nothing written)."""
    self.save()  # Eval summaries belong to a checkpoint's global step.
    with explained_data_loss(self.eval_feeder, "train.eval_feeder"):
      results = self.evaluate(self.eval_feeder.dataset(epochs=1), should_stop=preemption.requested)
    if results is None:
      stopped_by = signal.Signals(preemption.received_signal()).name
      logging.warning("Evaluation at step %d stopped by %s", self.step, stopped_by)
      return False
    scalars = {k: float(v) for k, v in results.items()}
    with self._writing():
      self.eval_writer.write_scalars(self.step, scalars)
      self.eval_writer.flush()
    self.evaluated_step = self.step
    self.results = scalars
    self.exporters.after_eval(self.step, scalars, self.saver.latest())
    self.early_stopping.record(self.step, scalars)
    # Not after the last step: there is nothing left to stop.
    if (
      self.on_evaluation is not None
      and self.step < self.total_steps
      and self.on_evaluation(self.step, scalars)
    ):
      logging.info("Stopping at step %d: the evaluation callback asked to stop", self.step)
      self.stop_after_eval = True
    self.progress.eval(self.step, scalars)
    return True

  def _non_finite(self, logs, finite, first) -> None:
    """Stops, or rolls back to the last good checkpoint under nan_policy 'rollback'."""
    bad = first + int(np.argmin(finite))
    what = (
      f"loss is {logs['loss'][bad - first]}"
      if not np.isfinite(logs["loss"][bad - first])
      else ("a gradient is NaN or Inf")
    )
    message = f"{what} at step {bad} (steps {first}..{self.step})"
    train = self.train_config
    if (
      train.nan_policy == "rollback"
      and self.rollbacks < train.nan_max_rollbacks
      and self.saved_step is not None
      # Each worker would have to restore the chief's checkpoint: one worker only.
      and self.placement.cluster.num_workers == 1
    ):
      self.rollbacks += 1
      # Weights and optimizer only: the input keeps going past the bad batches.
      self.saver.restore(self.saver.latest(), keys=[k for k in self.saver.entries if k != INPUT_STATE_KEY])
      self.step = int(self.global_step.numpy())
      logging.warning(
        "%s; rolled back to checkpoint step %d (rollback %d of %d), continuing on the next batches",
        message,
        self.step,
        self.rollbacks,
        train.nan_max_rollbacks,
      )
      return
    raise NonFiniteLossError(
      f"{message}; the last checkpoint (step {self.saved_step}) is untouched: lower model.learning_rate, "
      "check the data, or set train.nan_policy 'rollback'"
    )


def _discard_failed_save(saver, step: int) -> None:
  """Removes what a failed save of `step` left: temp folders, and its files unless the state file lists it."""
  try:
    saver.remove_partial_saves()
    prefix = os.path.join(saver.model_dir, f"model.ckpt-{step}")
    if saver.latest() != prefix:
      for path in tf.io.gfile.glob(f"{prefix}.*"):
        tf.io.gfile.remove(path)
  except (OSError, tf.errors.OpError) as error:  # Cleaning up must not hide why the save failed.
    logging.warning("Could not remove the partial checkpoint %d: %s", step, error)


@contextlib.contextmanager
def explained_data_loss(feeder, where: str, on_error: Callable[[], None] | None = None):
  """Turns a DataLossError into a UserError naming the corrupted file."""
  try:
    yield
  except tf.errors.DataLossError as error:
    if on_error is not None:
      on_error()
    explain = getattr(feeder, "explain", None)  # An optional Feeder hook.
    if explain is None:
      raise
    raise explain(error, where) from None


def report_corrupt_files(feeder) -> dict[str, float]:
  """Logs each damaged file once; returns the summary scalars of what `skip_corrupt_records` skips."""
  bad = [scan for scan in feeder.scan() if scan.error]
  for scan in bad:
    if scan.corrupt_ranges:
      logging.warning(
        "skip_corrupt_records: %s: %s; skipping only those %d bytes, reading its %d good records",
        scan.path,
        scan.error,
        scan.skipped_bytes,
        scan.records,
      )
    else:
      logging.warning(
        "skip_corrupt_records: %s: %s after %d good records; skipping the rest of the file (%s bytes; %s)",
        scan.path,
        scan.error,
        scan.records,
        scan.skipped_bytes or "unknown",
        "a compressed file cannot be read by record offset"
        if getattr(feeder, "compression", "")
        else "the native TFRecord ops that resynchronise are not loaded",
      )
  return {
    "input/corrupt_files_skipped": len(bad),
    # Resynchronisations: one per damaged range, or per file cut short by tf.data.
    "input/corrupt_records_skipped": sum(scan.corrupt_ranges or 1 for scan in bad),
    "input/corrupt_bytes_skipped": sum(scan.skipped_bytes for scan in bad),
  }


def write_train_summaries(
  writer: ScalarWriter,
  logs: dict[str, np.ndarray],
  first_step: int,
  every_steps: int,
  *,
  steps_per_sec: float,
) -> None:
  """Writes the per-step logs of one loop at steps that are multiples of `every_steps`."""
  due = [i for i in range(len(logs["loss"])) if (first_step + i) % every_steps == 0]
  for i in due:
    scalars = {name: float(values[i]) for name, values in logs.items()}
    if i == due[-1]:
      scalars["global_step/sec"] = steps_per_sec
    writer.write_scalars(first_step + i, scalars)
  writer.flush()

"""One training run between compiled loops: the host side of the outer loop.

`Run` holds what changes from loop to loop (the step, the periodic triggers,
the summary writers, the rollback count) and does the host work after each
compiled call: the non-finite check, summaries, checkpoints, evaluation,
early stopping, preemption and logging. `loop.train_and_evaluate` builds it.
"""

import contextlib
import math
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from absl import logging

from deephub.engine import distribute, preemption
from deephub.engine.early_stopping import EarlyStopping
from deephub.engine.hooks import PeriodicTrigger
from deephub.engine.input_state import INPUT_STATE_KEY
from deephub.engine.metrics_csv import write_metrics_csv
from deephub.engine.steps import FINITE_KEY
from deephub.engine.summaries import ScalarWriter


class NonFiniteLossError(RuntimeError):
  """The loss became NaN or Inf; no checkpoint of that state was written."""


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
  ):
    train = config.train
    self.train_config = train
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
    start_step, start_time = self.step, self.clock()
    while self.step < self.total_steps:
      num_steps = min(train.steps_per_loop, self.total_steps - self.step)
      loop_start = self.clock()
      logs = {
        k: v.numpy() for k, v in self.train_loop(iterator, tf.constant(num_steps)).items()
      }  # Sync point.
      loop_secs = max(self.clock() - loop_start, 1e-9)
      first = self.step + 1
      self.step += num_steps
      finite = logs.pop(FINITE_KEY) > 0.999  # The mean over replicas of 1.0 (finite) or 0.0.
      if not np.all(finite):
        self._non_finite(logs, finite, first)
        continue
      write_train_summaries(
        self.train_writer, logs, first, train.save_summary_steps, steps_per_sec=num_steps / loop_secs
      )
      if self.save_trigger(self.step):
        self.save()
      if self.eval_feeder is not None and self.placement.is_chief and self.eval_trigger(self.step):
        self.run_eval()
      if self.log_trigger(self.step) or self.step == self.total_steps:
        rate = (self.step - start_step) / max(self.clock() - start_time, 1e-9)
        eta = (self.total_steps - self.step) / rate if rate else math.inf
        logging.info(
          "step %d/%d  loss %.5g  %.3g steps/s  %.4g examples/s  ETA %s",
          self.step,
          self.total_steps,
          logs["loss"][-1],
          rate,
          rate * self.batch_size,
          _duration(eta),
        )
      # Only the chief evaluates, so its decision is shared: a worker that went
      # on alone would block in its next all-reduce.
      if preemption.any_worker(
        self.placement.strategy, self.placement.cluster.num_workers, bool(self.early_stopping(self.step))
      ):
        break  # Then the final checkpoint, evaluation and exports, as at the end.
      if preemption.stop_requested(self.placement.strategy, self.placement.cluster.num_workers):
        logging.warning(
          "Preempted at step %d: saving a checkpoint; rerun the same command to continue", self.step
        )
        self.preempted = True
        preemption.mark_stopped()
        break

  def finish(self) -> dict[str, float]:
    """Final checkpoint and evaluation; returns the last eval scalars."""
    self.save()
    self.train_writer.close()
    if self.preempted:  # The restart evaluates and exports when it finishes.
      logging.info("Stopped at global_step %d in %s", self.step, self.saver.model_dir)
      return self.results
    if self.eval_feeder is not None and self.placement.is_chief and self.evaluated_step != self.step:
      self.run_eval()
    self.eval_writer.close()
    if self.placement.is_chief:
      self.exporters.at_end(self.step)
      write_metrics_csv(self.saver.model_dir)
    logging.info("Finished at global_step %d in %s", self.step, self.saver.model_dir)
    return self.results

  def save(self) -> None:
    if self.saved_step != self.step:
      if self.placement.is_chief:
        self.saver.save(self.step)
      self.saved_step = self.step

  def save_progress(self) -> None:
    """After a failed loop: checkpoint the steps that completed, when finite."""
    self.step = int(self.global_step.numpy())
    try:
      self.save()
    except RuntimeError as error:  # Non-finite values: keep the last good checkpoint.
      logging.warning("Not saving progress: %s", error)

  def run_eval(self) -> None:
    self.save()  # Eval summaries belong to a checkpoint's global step.
    with explained_data_loss(self.eval_feeder, "train.eval_feeder"):
      scalars = {k: float(v) for k, v in self.evaluate(self.eval_feeder.dataset(epochs=1)).items()}
    self.eval_writer.write_scalars(self.step, scalars)
    self.eval_writer.flush()
    self.evaluated_step = self.step
    self.results = scalars
    self.exporters.after_eval(self.step, scalars, self.saver.latest())
    self.early_stopping.record(self.step, scalars)
    logging.info("Eval at step %d: %s", self.step, ", ".join(f"{k} = {v:.5g}" for k, v in scalars.items()))

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


@contextlib.contextmanager
def explained_data_loss(feeder, where: str, on_error: Callable[[], None] | None = None):
  """Turns a DataLossError into a UserError naming the corrupted file."""
  try:
    yield
  except tf.errors.DataLossError as error:
    if on_error is not None:
      on_error()
    raise feeder.explain(error, where) from None


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
        "a GZIP file cannot be read by record offset"
        if feeder.compression
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


def _duration(secs: float) -> str:
  if not math.isfinite(secs):
    return "?"
  secs = int(secs)
  return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"

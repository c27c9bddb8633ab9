"""train_and_evaluate: the outer loop that tests, benchmarks and the CLI call.

Python owns the outer loop; each iteration runs `steps_per_loop` steps in one
compiled call, then does the host work: non-finite check, summaries,
checkpoints, evaluation, logging. Resume order: restore the newest checkpoint
in model_dir (weights, optimizer state, global_step), then continue the
schedule from that step.
"""

import contextlib
import math
import os
import time
from collections.abc import Callable

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from deephub import variants
from deephub.engine import distribute, precision, preemption
from deephub.engine.checkpoint import CheckpointSaver, variable_entry
from deephub.engine.early_stopping import EarlyStopping
from deephub.engine.exporters import Exporters
from deephub.engine.hooks import PeriodicTrigger
from deephub.engine.input_state import INPUT_STATE_KEY, iterator_entry
from deephub.engine.metrics_csv import write_metrics_csv
from deephub.engine.steps import FINITE_KEY, make_evaluate, make_train_loop
from deephub.engine.summaries import ScalarWriter
from deephub.engine.warm_start import warm_start
from deephub.engine.xla_policy import use_xla
from deephub.errors import UserError
from deephub.io import make_feeder, remote
from deephub.io.distributed import distributed_dataset
from deephub.models import build_model


class NonFiniteLossError(RuntimeError):
  """The loss became NaN or Inf; no checkpoint of that state was written."""


def check_schedule(train: ml_collections.ConfigDict) -> None:
  """Validates the `train` section's periods before anything is built.

  Raises:
    UserError: both or neither checkpoint period set, or a period below 1.
  """
  steps, secs = train.save_checkpoint_steps, train.save_checkpoint_secs
  if (steps is None) == (secs is None):
    raise UserError(
      "set exactly one of train.save_checkpoint_steps and train.save_checkpoint_secs "
      f"(now {steps} and {secs}); set the other to None"
    )
  for key in (
    "epochs",
    "steps_per_loop",
    "save_summary_steps",
    "log_step_count_steps",
    "save_checkpoint_steps",
    "save_checkpoint_secs",
    "validation_steps",
  ):
    value = train[key]
    if value is not None and value < 1:
      raise UserError(f"train.{key} is {value}; set it to 1 or more")


@preemption.handles_sigterm
def train_and_evaluate(
  config: ml_collections.ConfigDict, *, clock: Callable[[], float] = time.monotonic
) -> dict[str, float]:
  """Trains `config` into `config.model.model_dir`, resuming if it holds a checkpoint.

  Args:
    config: a resolved variant config (model / train / runtime).
    clock: seconds for time-based periods; injectable for tests.

  Returns:
    The final evaluation's scalars (`loss` and the model's metrics), or {}
    when the variant has no eval feeder.

  Raises:
    UserError: invalid config or data.
    NonFiniteLossError: the loss or a gradient became NaN or Inf.
  """
  train = config.train
  model_dir = config.model.model_dir
  if not model_dir:
    raise UserError("model.model_dir is empty; set it to the folder to train into")
  check_schedule(train)
  remote.ensure_filesystems(
    {"model.model_dir": model_dir, "train.warm_start_check_point": train.warm_start_check_point}
  )
  placement = distribute.make_placement(config.runtime)  # First: it may configure the TF runtime.
  precision.set_policy(config.runtime.mixed_precision)
  keras.utils.set_random_seed(config.runtime.seed)
  if placement.is_chief:  # Only the chief writes into model_dir.
    variants.write_resolved_config(config, model_dir)

  train_feeder = make_feeder(train.train_feeder, seed=config.runtime.seed, where="train.train_feeder")
  eval_feeder = (
    make_feeder(train.eval_feeder, where="train.eval_feeder") if train.eval_feeder.file_patterns else None
  )
  if not train_feeder.label_names:
    raise UserError("train.train_feeder.labels_map is empty; training needs at least one label")
  # Data problems surface here, before any step runs.
  train_feeder.check_schema("train.train_feeder")
  if eval_feeder is not None:
    eval_feeder.check_schema("train.eval_feeder")
  if train_feeder.skip_corrupt_records:
    corrupt = _report_corrupt_files(train_feeder)
  with _explained_data_loss(train_feeder, "train.train_feeder"):
    steps_per_epoch = train_feeder.steps_per_epoch()
  if steps_per_epoch == 0:
    raise UserError(
      f"train.train_feeder yields no batch of {train_feeder.batch_size} examples from "
      f"{len(train_feeder.files)} file(s); lower batch_size, set drop_remainder False or add data"
    )

  with placement.strategy.scope():  # Variables are mirrored on every replica.
    model = build_model(
      config.model, feature_names=train_feeder.feature_names, label_names=train_feeder.label_names
    )
    model.build(
      train_feeder.dataset(epochs=1).element_spec[0]
    )  # Input-shaped variables, before the optimizer.
    optimizer = precision.wrap_optimizer(model.optimizer(), config.runtime.mixed_precision)
    optimizer.build(model.trainable_variables)
    global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
  # Infinite repetition: the step count, not the data, ends training.
  iterator = iter(
    distributed_dataset(
      train_feeder, placement.strategy, data_service=config.runtime.data_service, where="train.train_feeder"
    )
  )

  variables = model.named_variables()
  entries = {name: variable_entry(v) for name, v in variables.items()}
  entries.update(precision.optimizer_state_entries(optimizer, variables))
  # The Estimator's step counter; int64 scalar under its TF1 name.
  entries["global_step"] = variable_entry(global_step)
  input_entry = iterator_entry(iterator) if train.checkpoint_input_state else None
  if input_entry is not None:
    entries[INPUT_STATE_KEY] = input_entry
  saver = CheckpointSaver(model_dir, entries, keep_checkpoint_max=train.keep_checkpoint_max)
  if placement.is_chief:
    saver.remove_partial_saves()
  latest = saver.latest()
  if latest:
    saver.restore(latest)
    logging.info("Resuming from %s at global_step %d", latest, int(global_step.numpy()))
  else:  # Warm start applies to a fresh model_dir only, as in Estimator.
    warm_start(train, variables)

  run = _Run(
    config,
    clock=clock,
    saver=saver,
    global_step=global_step,
    steps_per_epoch=steps_per_epoch,
    batch_size=train_feeder.batch_size,
    eval_feeder=eval_feeder,
    placement=placement,
    train_loop=make_train_loop(
      model,
      optimizer,
      global_step,
      xla=use_xla(config.runtime) and placement.xla_ok,
      strategy=placement.strategy,
    ),
    evaluate=make_evaluate(model),
    exporters=Exporters(
      train.exporters,
      model=model,
      features_map=train.train_feeder.features_map,
      model_dir=model_dir,
      has_eval=eval_feeder is not None,
    ),
  )
  if train_feeder.skip_corrupt_records:
    run.train_writer.write_scalars(run.step, corrupt)
  if not latest:
    run.save()  # Like an Estimator: model.ckpt-0, the state to roll back to.
  with _explained_data_loss(train_feeder, "train.train_feeder", on_error=run.save_progress):
    run.train(iterator)
  return run.finish()


class _Run:
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
      _write_train_summaries(
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
    with _explained_data_loss(self.eval_feeder, "train.eval_feeder"):
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
def _explained_data_loss(feeder, where: str, on_error: Callable[[], None] | None = None):
  """Turns a DataLossError into a UserError naming the corrupted file."""
  try:
    yield
  except tf.errors.DataLossError as error:
    if on_error is not None:
      on_error()
    raise feeder.explain(error, where) from None


def _report_corrupt_files(feeder) -> dict[str, float]:
  """Logs the files `skip_corrupt_records` will cut short; returns summary scalars."""
  bad = [scan for scan in feeder.scan() if scan.error]
  for scan in bad:
    logging.warning(
      "skip_corrupt_records: %s: %s after %d good records; skipping the rest of the file (%s bytes)",
      scan.path,
      scan.error,
      scan.records,
      scan.skipped_bytes or "unknown",
    )
  return {
    "input/corrupt_files_skipped": len(bad),
    "input/corrupt_bytes_skipped": sum(scan.skipped_bytes for scan in bad),
  }


def _write_train_summaries(
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

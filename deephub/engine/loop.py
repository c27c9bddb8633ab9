"""train_and_evaluate: the outer loop that tests, benchmarks and the CLI call.

Python owns the outer loop; each iteration runs `steps_per_loop` steps in one
compiled call, then does the host work: non-finite check, summaries,
checkpoints, evaluation, logging. Resume order: restore the newest checkpoint
in model_dir (weights, optimizer state, global_step), then continue the
schedule from that step.
"""

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
from deephub.engine.checkpoint import CheckpointSaver, optimizer_entries, variable_entry
from deephub.engine.hooks import PeriodicTrigger
from deephub.engine.steps import make_evaluate, make_train_loop
from deephub.engine.summaries import ScalarWriter
from deephub.engine.xla_policy import use_xla
from deephub.errors import UserError
from deephub.io import make_feeder
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
    NonFiniteLossError: the loss became NaN or Inf.
  """
  train = config.train
  model_dir = config.model.model_dir
  if not model_dir:
    raise UserError("model.model_dir is empty; set it to the folder to train into")
  check_schedule(train)
  keras.utils.set_random_seed(config.runtime.seed)
  variants.write_resolved_config(config, model_dir)

  train_feeder = make_feeder(train.train_feeder, seed=config.runtime.seed, where="train.train_feeder")
  eval_feeder = (
    make_feeder(train.eval_feeder, where="train.eval_feeder") if train.eval_feeder.file_patterns else None
  )
  if not train_feeder.label_names:
    raise UserError("train.train_feeder.labels_map is empty; training needs at least one label")
  model = build_model(
    config.model, feature_names=train_feeder.feature_names, label_names=train_feeder.label_names
  )
  model.build(train_feeder.dataset(epochs=1).element_spec[0])  # Input-shaped variables, before the optimizer.
  optimizer = model.optimizer()
  optimizer.build(model.trainable_variables)
  global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")

  variables = model.named_variables()
  entries = {name: variable_entry(v) for name, v in variables.items()}
  entries.update(optimizer_entries(optimizer, variables))
  # The Estimator's step counter; int64 scalar under its TF1 name.
  entries["global_step"] = variable_entry(global_step)
  saver = CheckpointSaver(model_dir, entries, keep_checkpoint_max=train.keep_checkpoint_max)
  latest = saver.latest()
  if latest:
    saver.restore(latest)
    logging.info("Resuming from %s at global_step %d", latest, int(global_step))

  steps_per_epoch = train_feeder.steps_per_epoch()
  if steps_per_epoch == 0:
    raise UserError(
      f"train.train_feeder yields no full batch of {train_feeder.batch_size} "
      "examples; lower batch_size or set drop_remainder False"
    )
  total_steps = train.epochs * steps_per_epoch
  step = int(global_step)
  logging.info(
    "Training %s to step %d (%d epochs x %d steps) into %s",
    config.model.type,
    total_steps,
    train.epochs,
    steps_per_epoch,
    model_dir,
  )

  train_loop = make_train_loop(model, optimizer, global_step, xla=use_xla(config.runtime))
  evaluate = make_evaluate(model)
  # Infinite repetition: the step count, not the data, ends training.
  iterator = iter(train_feeder.dataset(epochs=None))
  train_writer = ScalarWriter(model_dir)
  eval_writer = ScalarWriter(os.path.join(model_dir, "eval"))
  save_trigger = PeriodicTrigger(
    every_steps=train.save_checkpoint_steps,
    every_secs=train.save_checkpoint_secs,
    start_step=step,
    clock=clock,
  )
  eval_trigger = PeriodicTrigger(
    every_steps=train.validation_steps, every_secs=train.validation_secs, start_step=step, clock=clock
  )
  log_trigger = PeriodicTrigger(every_steps=train.log_step_count_steps, start_step=step, clock=clock)
  saved_step, evaluated_step, results = (step if latest else None), None, {}
  start_step, start_time = step, clock()

  def save() -> None:
    nonlocal saved_step
    if saved_step != step:
      saver.save(step)
      saved_step = step

  def run_eval() -> dict[str, float]:
    nonlocal evaluated_step
    save()  # Eval summaries belong to a checkpoint's global step.
    scalars = {k: float(v) for k, v in evaluate(eval_feeder.dataset(epochs=1)).items()}
    eval_writer.write_scalars(step, scalars)
    eval_writer.flush()
    evaluated_step = step
    logging.info("Eval at step %d: %s", step, ", ".join(f"{k} = {v:.5g}" for k, v in scalars.items()))
    return scalars

  while step < total_steps:
    num_steps = min(train.steps_per_loop, total_steps - step)
    loop_start = clock()
    logs = {k: v.numpy() for k, v in train_loop(iterator, tf.constant(num_steps)).items()}  # Sync point.
    loop_secs = max(clock() - loop_start, 1e-9)
    first = step + 1
    step += num_steps
    if not np.all(np.isfinite(logs["loss"])):
      bad = first + int(np.argmin(np.isfinite(logs["loss"])))
      raise NonFiniteLossError(
        f"loss is {logs['loss'][bad - first]} at step {bad} (steps {first}..{step}); the last "
        f"checkpoint (step {saved_step}) is untouched: lower model.learning_rate or check the data"
      )
    _write_train_summaries(
      train_writer, logs, first, train.save_summary_steps, steps_per_sec=num_steps / loop_secs
    )
    if save_trigger(step):
      save()
    if eval_feeder is not None and eval_trigger(step):
      results = run_eval()
    if log_trigger(step) or step == total_steps:
      elapsed = max(clock() - start_time, 1e-9)
      rate = (step - start_step) / elapsed
      logging.info(
        "step %d/%d  loss %.5g  %.3g steps/s  %.4g examples/s  ETA %s",
        step,
        total_steps,
        logs["loss"][-1],
        rate,
        rate * train_feeder.batch_size,
        _duration((total_steps - step) / rate if rate else math.inf),
      )

  save()
  train_writer.close()
  if eval_feeder is not None and evaluated_step != step:
    results = run_eval()
  eval_writer.close()
  logging.info("Finished at global_step %d in %s", step, model_dir)
  return results


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

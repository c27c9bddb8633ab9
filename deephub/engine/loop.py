"""train_and_evaluate: builds a run and drives it; what tests, benchmarks and the CLI call.

Python owns the outer loop (`run.Run`); each iteration runs `steps_per_loop`
steps in one compiled call (`steps.py`), then does the host work. The chief
holds the model_dir lock for the whole run (model_dir_lock.py). Resume
order: restore the newest checkpoint in model_dir that reads (weights,
optimizer state, global_step, input position), passing over damaged ones,
else warm-start a fresh one, then continue the schedule from that step.
"""

import time
from collections.abc import Callable

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from deephub.config import variants
from deephub.engine import distribute, model_dir_lock, precision, preemption
from deephub.engine.checkpoint import CheckpointSaver, variable_entry
from deephub.engine.exporters import Exporters
from deephub.engine.input_state import INPUT_STATE_KEY, iterator_entry
from deephub.engine.run import EvaluationCallback, Run, explained_data_loss, report_corrupt_files
from deephub.engine.steps import make_evaluate, make_train_loop
from deephub.engine.warm_start import warm_start
from deephub.engine.xla_policy import use_xla
from deephub.errors import UserError
from deephub.io import make_feeder, remote
from deephub.io.distributed import distributed_dataset
from deephub.io.feeder import Feeder
from deephub.models import build_model
from deephub.models.base import check_dense_features

# Periods the loop cannot run without (None is allowed for the others).
_REQUIRED_COUNTS = ("steps_per_loop", "save_summary_steps")


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
    if (value is None and key in _REQUIRED_COUNTS) or (value is not None and value < 1):
      raise UserError(f"train.{key} is {value}; set it to 1 or more")


@preemption.handles_sigterm
def train_and_evaluate(
  config: ml_collections.ConfigDict,
  *,
  clock: Callable[[], float] = time.monotonic,
  on_evaluation: EvaluationCallback | None = None,
  train_feeder: Feeder | None = None,
  eval_feeder: Feeder | None = None,
) -> dict[str, float]:
  """Trains `config` into `config.model.model_dir`, resuming if it holds a checkpoint.

  Args:
    config: a resolved variant config (model / train / runtime).
    clock: seconds for time-based periods; injectable for tests.
    on_evaluation: called on the chief with (step, eval scalars) after each
      evaluation before the last step; returning True stops training there,
      as early stopping does (final checkpoint, exports; no second evaluation).
    train_feeder / eval_feeder: feeder objects (`deephub.io.feeder.Feeder`)
      used instead of building `train.train_feeder` / `train.eval_feeder`
      from the config (`deephub.train_and_evaluate` passes them).

  Returns:
    The final evaluation's scalars (`loss` and the model's metrics), or {}
    when the variant has no eval feeder.

  Raises:
    UserError: invalid config or data, another trainer holds model_dir, or
      model_dir holds checkpoints of which none reads.
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
  # Before anything is written into model_dir, until the last file is.
  with model_dir_lock.hold(model_dir, chief=placement.is_chief):
    return _train(config, placement, clock, on_evaluation, train_feeder, eval_feeder)


def _train(
  config: ml_collections.ConfigDict,
  placement,
  clock: Callable[[], float],
  on_evaluation: EvaluationCallback | None,
  train_feeder: Feeder | None,
  eval_feeder: Feeder | None,
) -> dict[str, float]:
  """The body of train_and_evaluate, run while the chief holds the model_dir lock."""
  train = config.train
  model_dir = config.model.model_dir
  precision.set_policy(config.runtime.mixed_precision)
  keras.utils.set_random_seed(config.runtime.seed)
  if placement.is_chief:  # Only the chief writes into model_dir.
    variants.write_resolved_config(config, model_dir)

  if train_feeder is None:
    train_feeder = make_feeder(
      train.train_feeder,
      seed=config.runtime.seed,
      where="train.train_feeder",
      max_index_bytes=config.runtime.max_index_bytes,
    )
  if eval_feeder is None and train.eval_feeder.file_patterns:
    eval_feeder = make_feeder(train.eval_feeder, where="train.eval_feeder")
  if not train_feeder.label_names:
    raise UserError("train.train_feeder.labels_map is empty; training needs at least one label")
  # Data problems surface here, before any step runs. The hooks are optional
  # (feeder.py): an in-memory or user feeder may have neither.
  for feeder, where in ((train_feeder, "train.train_feeder"), (eval_feeder, "train.eval_feeder")):
    if getattr(feeder, "check_schema", None) is not None:
      feeder.check_schema(where)
  skip_corrupt = getattr(train_feeder, "skip_corrupt_records", False) and hasattr(train_feeder, "scan")
  if skip_corrupt:
    corrupt = report_corrupt_files(train_feeder)
  with explained_data_loss(train_feeder, "train.train_feeder"):
    steps_per_epoch = train_feeder.steps_per_epoch()
  if steps_per_epoch == 0:
    raise UserError(
      f"train.train_feeder yields no batch of {train_feeder.batch_size} examples"
      + (f" from {len(train_feeder.files)} file(s)" if hasattr(train_feeder, "files") else "")
      + "; lower batch_size, set drop_remainder False or add data"
    )

  with placement.strategy.scope():  # Variables are mirrored on every replica.
    model = build_model(
      config.model, feature_names=train_feeder.feature_names, label_names=train_feeder.label_names
    )
    check_dense_features(model, train_feeder.dataset(epochs=1).element_spec[0], where="train.train_feeder")
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
  latest = saver.restore_newest(what="resume")
  if latest:
    logging.info("Resuming from %s at global_step %d", latest, int(global_step.numpy()))
  else:  # Warm start applies to a fresh model_dir only, as in Estimator.
    warm_start(train, variables)

  run = Run(
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
      autograph=config.runtime.autograph,
      strategy=placement.strategy,
      summary_steps=train.save_summary_steps,
    ),
    evaluate=make_evaluate(model, batches_per_call=train.steps_per_loop),
    exporters=Exporters(
      train.exporters,
      model=model,
      features_map=train.train_feeder.features_map,
      model_dir=model_dir,
      has_eval=eval_feeder is not None,
    ),
    on_evaluation=on_evaluation,
  )
  if skip_corrupt:
    run.train_writer.write_scalars(run.step, corrupt)
  if not latest:
    run.save()  # Like an Estimator: model.ckpt-0, the state to roll back to.
  with explained_data_loss(train_feeder, "train.train_feeder", on_error=run.save_progress), run.progress:
    run.train(iterator)
  return run.finish()

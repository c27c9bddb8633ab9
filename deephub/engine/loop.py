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
from absl import logging

from deephub import variants
from deephub.engine import distribute, model_dir_lock, precision, preemption
from deephub.engine.checkpoint import CheckpointSaver
from deephub.engine.exporters import Exporters
from deephub.engine.run import EvaluationCallback, Run, explained_data_loss, report_corrupt_files
from deephub.engine.state import build_train_state
from deephub.engine.steps import make_evaluate, make_train_loop
from deephub.engine.warm_start import warm_start
from deephub.engine.xla_policy import use_xla
from deephub.errors import UserError
from deephub.io import make_feeder, remote
from deephub.io.distributed import distributed_dataset

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
) -> dict[str, float]:
  """Trains `config` into `config.model.model_dir`, resuming if it holds a checkpoint.

  Args:
    config: a resolved variant config (model / train / runtime).
    clock: seconds for time-based periods; injectable for tests.
    on_evaluation: called on the chief with (step, eval scalars) after each
      evaluation before the last step; returning True stops training there,
      as early stopping does (final checkpoint, exports; no second evaluation).

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
    return _train(config, placement, clock, on_evaluation)


def _train(
  config: ml_collections.ConfigDict,
  placement,
  clock: Callable[[], float],
  on_evaluation: EvaluationCallback | None,
) -> dict[str, float]:
  """The body of train_and_evaluate, run while the chief holds the model_dir lock."""
  train = config.train
  model_dir = config.model.model_dir
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
    corrupt = report_corrupt_files(train_feeder)
  with explained_data_loss(train_feeder, "train.train_feeder"):
    steps_per_epoch = train_feeder.steps_per_epoch()
  if steps_per_epoch == 0:
    raise UserError(
      f"train.train_feeder yields no batch of {train_feeder.batch_size} examples from "
      f"{len(train_feeder.files)} file(s); lower batch_size, set drop_remainder False or add data"
    )

  state = build_train_state(config, placement, train_feeder)
  model, optimizer, global_step = state.model, state.optimizer, state.global_step
  # Infinite repetition: the step count, not the data, ends training.
  iterator = iter(
    distributed_dataset(
      train_feeder, placement.strategy, data_service=config.runtime.data_service, where="train.train_feeder"
    )
  )

  if train.checkpoint_input_state:
    state.add_input_state(iterator)
  saver = CheckpointSaver(model_dir, state.entries, keep_checkpoint_max=train.keep_checkpoint_max)
  if placement.is_chief:
    saver.remove_partial_saves()
  latest = saver.restore_newest(what="resume")
  if latest:
    logging.info("Resuming from %s at global_step %d", latest, int(global_step.numpy()))
  else:  # Warm start applies to a fresh model_dir only, as in Estimator.
    warm_start(train, model.named_variables())

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
  if train_feeder.skip_corrupt_records:
    run.train_writer.write_scalars(run.step, corrupt)
  if not latest:
    run.save()  # Like an Estimator: model.ckpt-0, the state to roll back to.
  with explained_data_loss(train_feeder, "train.train_feeder", on_error=run.save_progress), run.progress:
    run.train(iterator)
  return run.finish()

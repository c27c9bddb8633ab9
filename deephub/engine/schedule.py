"""The actions of one training run, built from the `train` section's periods, and the work at its end.

`Schedule` turns the config's periods into the actions the Controller calls
after each loop (actions.py): `save_action`, `evaluate_action` and
`ordered_actions` say which period drives which action and in what order
(summaries, checkpoint, evaluation, progress, the early-stopping vote, the
stop-signal vote); the tests call them too, with fakes for what they drive.
`Schedule.finish` does what follows the last loop however training stopped:
the final checkpoint, the final evaluation, the exports and metrics.csv.
"""

import os
import time
from collections.abc import Callable

import ml_collections
from absl import logging

from deephub.engine import config_values, distribute, preemption, progress
from deephub.engine.actions import (
  Evaluate,
  EvaluationCallback,
  LogProgress,
  RollBack,
  SaveCheckpoint,
  StopEarly,
  StopOnSignal,
  Vote,
  WriteSummaries,
)
from deephub.engine.checkpoint import CheckpointSaver
from deephub.engine.controller import Action, Outcome, StopReason
from deephub.engine.early_stopping import EarlyStopping
from deephub.engine.exporters import Exporters
from deephub.engine.inputs import TrainInputs, explained_data_loss
from deephub.engine.metrics_csv import write_metrics_csv
from deephub.engine.state import TrainState
from deephub.engine.steps import make_evaluate
from deephub.engine.triggers import PeriodicTrigger
from deephub.errors import UserError
from deephub.io import remote
from deephub.io.feeder import Feeder

# Periods the loop cannot run without (None is allowed for the others).
_REQUIRED_COUNTS = ("steps_per_loop", "save_summary_steps")


def check_config(config: ml_collections.ConfigDict) -> None:
  """Validates what training needs before anything is built or written.

  Raises:
    UserError: no model_dir, a None where the defaults allow none, a bad
      seed, keep_checkpoint_max or nan_policy (config_values.py), a bad period
      (check_schedule), or a remote path whose file system is not available.
  """
  train, model_dir = config.train, config.model.model_dir
  if not model_dir:
    raise UserError("model.model_dir is empty; set it to the folder to train into")
  config_values.check_no_none(config)
  config_values.check_runtime(config.runtime)
  config_values.check_train_values(train)
  check_schedule(train)
  remote.ensure_filesystems(
    {"model.model_dir": model_dir, "train.warm_start_check_point": train.warm_start_check_point}
  )


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


def save_action(
  train: ml_collections.ConfigDict,
  saver: CheckpointSaver,
  global_step,
  *,
  start_step: int,
  is_chief: bool,
  clock: Callable[[], float],
) -> SaveCheckpoint:
  """The checkpoint action, on save_checkpoint_steps / save_checkpoint_secs."""
  trigger = PeriodicTrigger(
    every_steps=train.save_checkpoint_steps,
    every_secs=train.save_checkpoint_secs,
    start_step=start_step,
    clock=clock,
  )
  return SaveCheckpoint(saver, trigger=trigger, global_step=global_step, is_chief=is_chief)


def evaluate_action(
  train: ml_collections.ConfigDict, *, start_step: int, clock: Callable[[], float], **parts
) -> Evaluate:
  """The evaluation action, on validation_steps / validation_secs; `parts` are Evaluate's other arguments."""
  trigger = PeriodicTrigger(
    every_steps=train.validation_steps, every_secs=train.validation_secs, start_step=start_step, clock=clock
  )
  # validation_secs None: after every checkpoint, as Estimator's unthrottled evaluation.
  return Evaluate(trigger=trigger, at_every_checkpoint=train.validation_secs is None, **parts)


def ordered_actions(
  train: ml_collections.ConfigDict,
  *,
  save: SaveCheckpoint,
  evaluate: Evaluate | None,
  writer,
  progress,
  early_stopping: Callable[[int], str | None],
  stop_requested: Callable[[], bool],
  vote: Vote,
  start_step: int,
  clock: Callable[[], float],
) -> list[Action]:
  """The actions in the order the Controller calls them after each loop.

  The order is what each needs of the ones before it: the evaluation
  belongs to the checkpoint this loop wrote, and the early-stopping vote
  hears what this loop's evaluation asked.

  Args:
    train: the `train` section (save_summary_steps, log_step_count_steps).
    save: the checkpoint action (save_action); its explained_writes serve the summaries.
    evaluate: the evaluation action (evaluate_action); None without eval data.
    writer: the train ScalarWriter.
    progress: the progress display.
    early_stopping: returns why to stop at a step, or None.
    stop_requested: True once a stop signal arrived (preemption.requested).
    vote: shares a stop decision with every worker.
    start_step: the step the run starts (or resumes) from.
    clock: seconds, for the log period.
  """
  log_trigger = PeriodicTrigger(every_steps=train.log_step_count_steps, start_step=start_step, clock=clock)
  return [
    WriteSummaries(writer, every_steps=train.save_summary_steps, explained_writes=save.explained_writes),
    save,
    *([evaluate] if evaluate is not None else []),
    LogProgress(progress, trigger=log_trigger),
    StopEarly(early_stopping, evaluate, vote=vote),
    StopOnSignal(stop_requested, vote=vote),
  ]


class TrainResult(dict):
  """The final evaluation's scalars (a dict, {} without eval data), and how training ended."""

  def __init__(self, scalars: dict[str, float], *, stop_reason: StopReason, stop_signal: int | None = None):
    super().__init__(scalars)
    self.stop_reason = stop_reason
    # The signal that preempted training (SIGTERM, SIGINT), else None.
    self.stop_signal = stop_signal


class Schedule:
  """The actions of one run (in the Controller's order) and the work after its last loop."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    state: TrainState,
    saver: CheckpointSaver,
    inputs: TrainInputs,
    placement: distribute.Placement,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_evaluation: EvaluationCallback | None = None,
  ):
    """Args:
    config: the variant config (`train` periods and policies).
    state: what trains; its global_step is the step resumed from.
    saver: the checkpoint writer, after resume.
    inputs: the feeders.
    placement: strategy and cluster; only the chief writes into model_dir.
    clock: seconds for time-based periods; injectable for tests.
    on_evaluation: see actions.EvaluationCallback.
    """
    train = config.train
    self.model_dir = saver.model_dir
    self.placement = placement
    self.global_step = state.global_step
    self.total_steps = train.epochs * inputs.steps_per_epoch
    step = state.step
    early_stopping = EarlyStopping(
      train,
      eval_dir=os.path.join(self.model_dir, "eval") if inputs.eval else None,
      steps_per_epoch=inputs.steps_per_epoch,
      start_step=step,
    )
    # Only the chief writes into model_dir; other workers get writers that write nothing.
    self.train_writer = distribute.chief_writer(placement, self.model_dir)
    self.eval_writer = distribute.chief_writer(placement, os.path.join(self.model_dir, "eval"))
    self.save = save_action(
      train, saver, state.global_step, start_step=step, is_chief=placement.is_chief, clock=clock
    )
    if self.save.saved_step is not None and placement.is_chief:
      self._mark_resume(step, has_eval=inputs.eval is not None)
    # A live line on a terminal, else log lines; entered around training by train.py.
    self.progress = progress.for_stderr(
      total_steps=self.total_steps, start_step=step, batch_size=inputs.train.batch_size, clock=clock
    )
    self.exporters = Exporters(
      train.exporters,
      model=state.model,
      features_map=train.train_feeder.features_map,
      model_dir=self.model_dir,
      has_eval=inputs.eval is not None,
      feeder=inputs.train,
    )
    self.evaluate = None
    if inputs.eval is not None:
      self.evaluate = self._evaluate_action(config, state, inputs.eval, early_stopping, clock, on_evaluation)
    self.actions = ordered_actions(
      train,
      save=self.save,
      evaluate=self.evaluate,
      writer=self.train_writer,
      progress=self.progress,
      early_stopping=early_stopping,
      stop_requested=preemption.requested,
      vote=self._vote,
      start_step=step,
      clock=clock,
    )
    num_workers = placement.cluster.num_workers
    self.rollback = RollBack(
      self.save, policy=train.nan_policy, max_rollbacks=train.nan_max_rollbacks, num_workers=num_workers
    )
    if inputs.corrupt_records:
      self.train_writer.write_scalars(step, inputs.corrupt_records)
    logging.info(
      "Training %s to step %d (%d epochs x %d steps) into %s",
      config.model.type,
      self.total_steps,
      train.epochs,
      inputs.steps_per_epoch,
      self.model_dir,
    )

  def _mark_resume(self, step: int, *, has_eval: bool) -> None:
    """TensorBoard drops what a killed run wrote past the resumed checkpoint; its own summaries stay."""
    with self.save.explained_writes():
      self.train_writer.write_session_start(step + 1)
      if has_eval:
        self.eval_writer.write_session_start(step + 1)

  def _evaluate_action(
    self,
    config: ml_collections.ConfigDict,
    state: TrainState,
    eval_feeder: Feeder,
    early_stopping: EarlyStopping,
    clock: Callable[[], float],
    on_evaluation: EvaluationCallback | None,
  ) -> Evaluate:
    """The evaluation action over `eval_feeder`, on validation_steps / validation_secs."""
    train = config.train
    evaluate = make_evaluate(state.model, batches_per_call=train.steps_per_loop)

    def run_pass():
      with explained_data_loss(eval_feeder, "train.eval_feeder"):
        return evaluate(eval_feeder.dataset(epochs=1), should_stop=preemption.requested)

    return evaluate_action(
      train,
      start_step=state.step,
      clock=clock,
      run_pass=run_pass,
      save=self.save,
      writer=self.eval_writer,
      exporters=self.exporters,
      early_stopping=early_stopping,
      progress=self.progress,
      total_steps=self.total_steps,
      on_evaluation=on_evaluation,
      is_chief=self.placement.is_chief,
      stop_signal=preemption.received_signal,
    )

  def _vote(self, local: bool) -> bool:
    """True on every worker when `local` is on any; every worker calls it at the same loop."""
    return preemption.any_worker(self.placement.strategy, self.placement.cluster.num_workers, local)

  def finish(self, outcome: Outcome) -> TrainResult:
    """The final checkpoint and evaluation, then (unless preempted) the exports and metrics.csv."""
    step = int(self.global_step.numpy())
    preempted = outcome.stop_reason is StopReason.PREEMPTED
    self.save.save(step)
    with self.save.explained_writes():
      self.train_writer.close()
    evaluate = self.evaluate
    if (
      not preempted
      and evaluate is not None
      and self.placement.is_chief
      and evaluate.evaluated_step != step
      and not evaluate.evaluate(step)
    ):
      preempted = True  # A stop signal during the final evaluation: the rerun evaluates.
    with self.save.explained_writes():
      self.eval_writer.close()
    results = evaluate.results if evaluate is not None else {}
    if preempted:  # The restart evaluates and exports when it finishes.
      logging.info("Stopped at global_step %d in %s", step, self.model_dir)
      return TrainResult(results, stop_reason=StopReason.PREEMPTED, stop_signal=preemption.received_signal())
    if self.placement.is_chief:
      self.exporters.at_end(step)
      write_metrics_csv(self.model_dir)
    logging.info("Finished at global_step %d in %s", step, self.model_dir)
    return TrainResult(results, stop_reason=outcome.stop_reason)

"""One trial: sample (or re-read) its values, train into `<study-dir>/trial-<number>`, tell Optuna.

Each evaluation during training is reported to Optuna as an intermediate
value at its global step; when the pruner says so, the engine's
`on_evaluation` callback stops training there (checkpoint kept) and the trial
is told PRUNED. A trial that resumes (its model_dir holds a checkpoint)
continues from that checkpoint: Optuna returns the values it sampled before.
"""

import math
from typing import Any

import keras
import optuna
import tensorflow as tf
from absl import logging

from deephub.engine import NonFiniteLossError, StopReason, train_and_evaluate
from deephub.errors import UserError
from deephub.hpt import hparams
from deephub.hpt.records import ERROR_ATTR, RESUMED_ATTR, STEPS_ATTR, trial_dir
from deephub.hpt.spec import Param, TuneSpec, trial_config


def suggest(trial, params: tuple[Param, ...]) -> dict[str, Any]:
  """The trial's value for every param; a resumed trial gets the values it was given before."""
  values = {}
  for param in params:
    if param.is_constant:
      values[param.key] = param.constant
    elif param.type == "CATEGORICAL":
      values[param.key] = trial.suggest_categorical(param.key, list(param.choices))
    elif param.type == "INTEGER":
      values[param.key] = trial.suggest_int(
        param.key, param.low, param.high, step=param.step or 1, log=param.log
      )
    else:
      values[param.key] = trial.suggest_float(
        param.key, param.low, param.high, step=param.step, log=param.log
      )
  return values


def checkpoint_step(model_dir: str) -> int | None:
  """The global step of the newest checkpoint in model_dir, or None."""
  latest = tf.train.latest_checkpoint(model_dir)
  return int(latest.rsplit("-", 1)[1]) if latest else None


class _Pruning:
  """The engine's `on_evaluation`: reports each evaluation and asks the pruner."""

  def __init__(self, trial, metric: str):
    self.trial = trial
    self.metric = metric
    self.pruned_at: int | None = None
    self.last: tuple[int, float] | None = None

  def __call__(self, step: int, scalars) -> bool:
    value = scalars.get(self.metric)
    if value is None or not math.isfinite(value):
      return False  # A missing metric fails the trial at the end; NaN stops training by itself.
    self.trial.report(value, step)
    self.last = (step, value)
    if self.trial.should_prune():
      self.pruned_at = step
      return True
    return False


def run_trial(study, storage, trial, spec: TuneSpec, study_dir: str) -> bool:
  """Trains `trial` and tells the study how it ended.

  Args:
    study: the Optuna study; `trial` came from its `ask()`.
    storage: the study's storage (to put a SIGTERM'd trial back to waiting).
    trial: a running Optuna trial.
    spec: the checked tune file.
    study_dir: where trial model_dirs go.

  Returns:
    False when training stopped for SIGTERM: the trial is put back to waiting
    (a rerun resumes it from its checkpoint) and the worker should stop.

  Raises:
    Exception: a bug (not a user or data problem) after marking the trial failed.
  """
  values = suggest(trial, spec.params)
  model_dir = trial_dir(study_dir, trial.number)
  resumed = checkpoint_step(model_dir)
  if resumed is not None:
    trial.set_user_attr(RESUMED_ATTR, resumed)
    logging.warning("Trial %d resumes from its checkpoint at step %d", trial.number, resumed)
  pruning = _Pruning(trial, spec.metric)
  # Fresh Keras name counters: a resumed trial in a new process builds the same variable names.
  keras.backend.clear_session()
  try:
    config = trial_config(spec, values, model_dir)
    tf.io.gfile.makedirs(model_dir)
    hparams.write_trial_values(model_dir, f"trial-{trial.number}", values)
    results = train_and_evaluate(config, on_evaluation=pruning)
  except (NonFiniteLossError, UserError, tf.errors.OpError) as error:
    _fail(study, trial, model_dir, f"{type(error).__name__}: {' '.join(str(error).split())}")
    return True
  except (KeyboardInterrupt, SystemExit):
    # Interrupted, not failed: a rerun resumes the trial from its checkpoint.
    storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.WAITING)
    raise
  except Exception as error:  # A bug: recorded on the trial, then raised with its traceback.
    _fail(study, trial, model_dir, f"{type(error).__name__}: {' '.join(str(error).split())}")
    raise
  if results.stop_reason is StopReason.PREEMPTED:
    storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.WAITING)
    return False
  steps = checkpoint_step(model_dir)
  trial.set_user_attr(STEPS_ATTR, steps)
  if pruning.pruned_at is not None:
    hparams.write_trial_end(model_dir, steps, pruning.last[1])
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return True
  value = results.get(spec.metric)
  if value is None or not math.isfinite(value):
    reported = ", ".join(sorted(results))
    _fail(study, trial, model_dir, f"the final evaluation gave {spec.metric} = {value} (it has {reported})")
    return True
  hparams.write_trial_end(model_dir, steps, value)
  study.tell(trial, value)
  return True


def _fail(study, trial, model_dir: str, message: str) -> None:
  logging.error("Trial %d failed: %s", trial.number, message)
  trial.set_user_attr(ERROR_ATTR, message)
  if tf.io.gfile.isdir(model_dir):
    hparams.write_trial_end(model_dir, checkpoint_step(model_dir) or 0, None, failed=True)
  study.tell(trial, state=optuna.trial.TrialState.FAIL)

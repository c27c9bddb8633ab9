"""What TensorBoard's HParams tab reads: the search space at the study dir, each trial's values in its dir.

`tensorboard --logdir <study-dir>` then lists one session per trial
(`trial-<number>`) with its sampled values, its objective (`hpt/objective`,
written when the trial ends) and the eval metric from its `eval/` run, and
can sort, filter and plot trials by them.
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams.summary import session_end_pb

from deephub.hpt.spec import Param

OBJECTIVE_TAG = "hpt/objective"


def _domain(param: Param):
  if param.is_constant:
    return hp.Discrete([param.constant]) if isinstance(param.constant, (int, float, str, bool)) else None
  if param.type == "REAL":
    return hp.RealInterval(float(param.low), float(param.high))
  if param.type == "INTEGER":
    return hp.IntInterval(int(param.low), int(param.high))
  kinds = {type(choice) for choice in param.choices}
  # Discrete needs one type of int, float, str or bool; mixed choices get no domain.
  return hp.Discrete(list(param.choices)) if len(kinds) == 1 and kinds <= {int, float, str, bool} else None


def write_study_config(study_dir: str, params: Sequence[Param], metric: str) -> None:
  """Writes the experiment (hparams and metrics) once into the study dir's own events file."""
  tf.io.gfile.makedirs(study_dir)
  if tf.io.gfile.glob(os.path.join(study_dir, "events.out.tfevents.*")):
    return  # Another worker, or an earlier run, wrote it.
  writer = tf.summary.create_file_writer(study_dir)
  with writer.as_default():
    hp.hparams_config(
      hparams=[hp.HParam(param.key, _domain(param)) for param in params],
      metrics=[
        hp.Metric(OBJECTIVE_TAG, display_name=f"objective ({metric})"),
        hp.Metric(metric, group="eval", display_name=f"eval {metric}"),
      ],
    )
  writer.close()


def _plain(value: Any) -> Any:
  """HParams values must be bool, int, float or str; anything else is shown as text."""
  return value if isinstance(value, (bool, int, float, str)) else str(value)


def write_trial_values(model_dir: str, name: str, values: Mapping[str, Any]) -> None:
  """Records a trial's sampled values as session `name` in its model_dir."""
  writer = tf.summary.create_file_writer(model_dir, filename_suffix=".hparams")
  with writer.as_default():
    hp.hparams({key: _plain(value) for key, value in values.items()}, trial_id=name)
  writer.close()


def write_trial_end(model_dir: str, step: int, value: float | None, *, failed: bool = False) -> None:
  """Records how the trial ended: the value Optuna was told, and for complete or failed trials the status.

  Args:
    model_dir: the trial's model_dir.
    step: the global step it ended at (0 when it failed before a checkpoint).
    value: the final metric, or the last reported one of a pruned trial;
      None for a failed trial.
    failed: the trial failed (HParams status FAILURE); otherwise, with a
      value, SUCCESS. Pruned trials get no status: HParams has none for them.
  """
  writer = tf.summary.create_file_writer(model_dir, filename_suffix=".hparams")
  with writer.as_default():
    if value is not None:
      tf.summary.scalar(OBJECTIVE_TAG, value, step=step)
    if failed or value is not None:
      status = api_pb2.STATUS_FAILURE if failed else api_pb2.STATUS_SUCCESS
      tf.summary.experimental.write_raw_pb(session_end_pb(status).SerializeToString(), step=step)
  writer.close()

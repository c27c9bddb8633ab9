"""Exporters run by the training loop: final, best-by-metric, best-checkpoint copier.

Their Estimator-era counterparts and what they do here:
- `FinalExporter`: one SavedModel of the final weights when training ends.
- `BestExporter`: a SavedModel whenever an evaluation beats every earlier one
  (earlier runs' evaluations included, read from `eval/`), keeping the newest
  `exports_to_keep`.
- `BestCheckpointCopier` (legacy deephub): copies the evaluated checkpoint to
  `model_dir/<name>/` while it ranks among the `checkpoints_to_keep` best,
  with a `checkpoint` state file naming the best one, so the folder works as
  `train.warm_start_check_point`.
Exports go to `model_dir/export/<name>/<unix seconds>/` (see serving.py).
"""

import os
import re
from collections.abc import Mapping
from typing import Any

import ml_collections
import tensorflow as tf
from absl import logging

from deephub.engine.checkpoint import write_state_file
from deephub.engine.event_files import is_better, read_scalars
from deephub.engine.serving import ServingModule, list_exports, write_saved_model
from deephub.errors import UserError
from deephub.models.base import Model


def _metric(scalars: Mapping[str, float], metric: str, key: str) -> float:
  if metric not in scalars:
    raise UserError(
      f"{key} is {metric!r} but the evaluation has only {', '.join(sorted(scalars))}; use one of those"
    )
  return scalars[metric]


class Exporters:
  """The exporters configured in `train.exporters`, called by the loop."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    *,
    model: Model,
    features_map: Mapping[str, Any],
    model_dir: str,
    has_eval: bool,
  ):
    """Args:
    config: the `train.exporters` section.
    model: the model being trained; exports hold its current weights.
    features_map: the train feeder's features, the serving inputs.
    model_dir: the run's folder.
    has_eval: whether the run evaluates (best-by-metric exporters need it).

    Raises:
      UserError: a best-by-metric exporter without an eval feeder.
    """
    self._config = config
    self._model_dir = model_dir
    self._module = None
    self._model, self._features_map = model, features_map
    best, copier = config.best, config.best_checkpoint_copier
    for key, section in (("best", best), ("best_checkpoint_copier", copier)):
      if section.name and not has_eval:
        raise UserError(
          f"train.exporters.{key}.name is {section.name!r} but train.eval_feeder has no "
          "file_patterns; set them, or set the name to '' to disable it"
        )
    if best.name and best.exports_to_keep < 1:
      raise UserError(f"train.exporters.best.exports_to_keep is {best.exports_to_keep}; set it to 1 or more")
    history = read_scalars(os.path.join(model_dir, "eval")) if has_eval else {}
    self._best_value = None
    if best.name:
      for scalars in history.values():
        if best.metric in scalars and is_better(
          scalars[best.metric], self._best_value, higher_is_better=best.higher_is_better
        ):
          self._best_value = scalars[best.metric]
    self._kept_checkpoints = _kept_checkpoints(model_dir, copier, history) if copier.name else []

  def after_eval(self, step: int, scalars: Mapping[str, float], checkpoint: str) -> None:
    """Runs the best exporter and the checkpoint copier on an evaluation of `checkpoint`."""
    best = self._config.best
    if best.name:
      value = _metric(scalars, best.metric, "train.exporters.best.metric")
      if is_better(value, self._best_value, higher_is_better=best.higher_is_better):
        self._best_value = value
        path = self._export(best.name)
        logging.info("Best %s %.5g at step %d: exported %s", best.metric, value, step, path)
        for old in list_exports(os.path.dirname(path))[: -best.exports_to_keep]:
          tf.io.gfile.rmtree(old)
    if self._config.best_checkpoint_copier.name:
      self._copy_checkpoint(step, scalars, checkpoint)

  def at_end(self, step: int) -> None:
    """Runs the final exporter when training ends at `step`."""
    if self._config.final.name:
      path = self._export(self._config.final.name)
      logging.info("Final export at step %d: %s", step, path)

  def _export(self, name: str) -> str:
    if self._module is None:  # Traced once, on first use.
      self._module = ServingModule(self._model, self._features_map)
    return write_saved_model(self._module, os.path.join(self._model_dir, "export", name))

  def _copy_checkpoint(self, step: int, scalars: Mapping[str, float], checkpoint: str) -> None:
    copier = self._config.best_checkpoint_copier
    value = _metric(scalars, copier.metric, "train.exporters.best_checkpoint_copier.metric")
    kept = self._kept_checkpoints
    worst = kept[-1][0] if len(kept) >= copier.checkpoints_to_keep else None
    if not is_better(value, worst, higher_is_better=copier.higher_is_better):
      return
    folder = os.path.join(self._model_dir, copier.name)
    tf.io.gfile.makedirs(folder)
    for path in tf.io.gfile.glob(f"{checkpoint}.*"):
      tf.io.gfile.copy(path, os.path.join(folder, os.path.basename(path)), overwrite=True)
    kept = [entry for entry in kept if entry[1] != step] + [(value, step)]
    kept.sort(key=lambda entry: entry[0], reverse=copier.higher_is_better)
    for _, old in kept[copier.checkpoints_to_keep :]:
      for path in tf.io.gfile.glob(os.path.join(folder, f"model.ckpt-{old}.*")):
        tf.io.gfile.remove(path)
    self._kept_checkpoints = kept[: copier.checkpoints_to_keep]
    names = [f"model.ckpt-{s}" for _, s in self._kept_checkpoints]
    write_state_file(folder, names[0], names)
    logging.info("Copied checkpoint of step %d (%s %.5g) to %s", step, copier.metric, value, folder)


def _kept_checkpoints(
  model_dir: str, copier: ml_collections.ConfigDict, history: Mapping[int, Mapping[str, float]]
) -> list[tuple[float, int]]:
  """(score, step) of checkpoints an earlier run copied, best first."""
  if copier.checkpoints_to_keep < 1:
    raise UserError(
      f"train.exporters.best_checkpoint_copier.checkpoints_to_keep is {copier.checkpoints_to_keep}; "
      "set it to 1 or more, or set its name to '' to disable it"
    )
  folder = os.path.join(model_dir, copier.name)
  steps = [
    int(m[1])
    for p in tf.io.gfile.glob(os.path.join(folder, "*.index"))
    if (m := re.search(r"-(\d+)\.index$", p))
  ]
  kept = [(history[s][copier.metric], s) for s in steps if copier.metric in history.get(s, {})]
  return sorted(kept, key=lambda entry: entry[0], reverse=copier.higher_is_better)

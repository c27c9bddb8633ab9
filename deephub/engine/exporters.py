"""Exporters run by the training loop: final, best-by-metric, latest, best-checkpoint copier.

Their Estimator-era counterparts and what they do here:
- `FinalExporter`: one SavedModel of the final weights when training ends.
- `BestExporter`: a SavedModel whenever an evaluation beats every earlier one
  (earlier runs' evaluations included, read from `eval/`), keeping the newest
  `exports_to_keep`.
- `LatestExporter`: a SavedModel after every evaluation, keeping the newest
  `exports_to_keep`.
- `BestCheckpointCopier` (legacy deephub): copies the evaluated checkpoint to
  `model_dir/<name>/` while it ranks among the `checkpoints_to_keep` best,
  with a `checkpoint` state file naming the best one, so the folder works as
  `train.warm_start_check_point`.
Exports go to `model_dir/export/<name>/<unix seconds>/` (see serving.py).
Each is built and called through the interface in `deephub.engine.exporter`,
as a user's own exporter class (`train.exporters.custom`) is.
"""

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

import ml_collections
import tensorflow as tf
from absl import logging

from deephub.engine.checkpoint import write_state_file
from deephub.engine.event_files import is_better, read_scalars
from deephub.engine.exporter import ExportContext, Exporter
from deephub.engine.serving import ServingModule, list_exports, write_saved_model
from deephub.engine.serving_inputs import serving_inputs
from deephub.errors import UserError
from deephub.io.feeder import Feeder
from deephub.models.base import Model
from deephub.user_classes import import_class


def _metric(scalars: Mapping[str, float], metric: str, key: str) -> float:
  if metric not in scalars:
    raise UserError(
      f"{key} is {metric!r} but the evaluation has only {', '.join(sorted(scalars))}; use one of those"
    )
  return scalars[metric]


def _needs_eval(context: ExportContext, name: str) -> None:
  if not context.has_eval:
    raise UserError(
      f"{context.where}.name is {name!r} but train.eval_feeder has no "
      "file_patterns; set them, or set the name to '' to disable it"
    )


def _at_least_one(context: ExportContext, key: str, value: int) -> None:
  if value < 1:
    raise UserError(
      f"{context.where}.{key} is {value}; set it to 1 or more, or set its name to '' to disable it"
    )


class FinalExporter:
  """One SavedModel of the final weights when training ends."""

  def __init__(self, context: ExportContext, *, name: str):
    self._context, self._name = context, name

  def after_eval(self, step: int, scalars: Mapping[str, float], checkpoint: str) -> None:
    del step, scalars, checkpoint  # Exports only at the end.

  def at_end(self, step: int) -> None:
    path = self._context.export(self._name)
    logging.info("Final export at step %d: %s", step, path)


class BestExporter:
  """A SavedModel whenever an evaluation beats every earlier one; the newest `exports_to_keep` stay."""

  def __init__(
    self, context: ExportContext, *, name: str, metric: str, higher_is_better: bool, exports_to_keep: int
  ):
    _needs_eval(context, name)
    _at_least_one(context, "exports_to_keep", exports_to_keep)
    self._context, self._name, self._metric = context, name, metric
    self._higher_is_better, self._exports_to_keep = higher_is_better, exports_to_keep
    self._best_value = None  # Earlier runs' evaluations count: a resumed run exports only on a new best.
    for value in (scalars[metric] for scalars in context.history.values() if metric in scalars):
      if is_better(value, self._best_value, higher_is_better=higher_is_better):
        self._best_value = value

  def after_eval(self, step: int, scalars: Mapping[str, float], checkpoint: str) -> None:
    value = _metric(scalars, self._metric, f"{self._context.where}.metric")
    if is_better(value, self._best_value, higher_is_better=self._higher_is_better):
      self._best_value = value
      path = self._context.export(self._name)
      logging.info("Best %s %.5g at step %d: exported %s", self._metric, value, step, path)
      _keep_newest(os.path.dirname(path), self._exports_to_keep)

  def at_end(self, step: int) -> None:
    del step


class LatestExporter:
  """A SavedModel after every evaluation; the newest `exports_to_keep` stay (Estimator's LatestExporter)."""

  def __init__(self, context: ExportContext, *, name: str, exports_to_keep: int):
    _needs_eval(context, name)
    _at_least_one(context, "exports_to_keep", exports_to_keep)
    self._context, self._name, self._exports_to_keep = context, name, exports_to_keep

  def after_eval(self, step: int, scalars: Mapping[str, float], checkpoint: str) -> None:
    del scalars, checkpoint
    path = self._context.export(self._name)
    logging.info("Latest export at step %d: %s", step, path)
    _keep_newest(os.path.dirname(path), self._exports_to_keep)

  def at_end(self, step: int) -> None:
    del step


def _keep_newest(folder: str, count: int) -> None:
  for old in list_exports(folder)[:-count]:
    tf.io.gfile.rmtree(old)


class BestCheckpointCopier:
  """Copies each evaluated checkpoint ranking among the `checkpoints_to_keep` best to model_dir/<name>/."""

  def __init__(
    self, context: ExportContext, *, name: str, metric: str, higher_is_better: bool, checkpoints_to_keep: int
  ):
    _needs_eval(context, name)
    _at_least_one(context, "checkpoints_to_keep", checkpoints_to_keep)
    self._context, self._name, self._metric = context, name, metric
    self._higher_is_better, self._checkpoints_to_keep = higher_is_better, checkpoints_to_keep
    self._kept = self._kept_checkpoints()

  def after_eval(self, step: int, scalars: Mapping[str, float], checkpoint: str) -> None:
    value = _metric(scalars, self._metric, f"{self._context.where}.metric")
    kept = self._kept
    worst = kept[-1][0] if len(kept) >= self._checkpoints_to_keep else None
    if not is_better(value, worst, higher_is_better=self._higher_is_better):
      return
    folder = os.path.join(self._context.model_dir, self._name)
    tf.io.gfile.makedirs(folder)
    for path in tf.io.gfile.glob(f"{checkpoint}.*"):
      tf.io.gfile.copy(path, os.path.join(folder, os.path.basename(path)), overwrite=True)
    kept = [entry for entry in kept if entry[1] != step] + [(value, step)]
    kept.sort(key=lambda entry: entry[0], reverse=self._higher_is_better)
    for _, old in kept[self._checkpoints_to_keep :]:
      for path in tf.io.gfile.glob(os.path.join(folder, f"model.ckpt-{old}.*")):
        tf.io.gfile.remove(path)
    self._kept = kept[: self._checkpoints_to_keep]
    names = [f"model.ckpt-{s}" for _, s in self._kept]
    write_state_file(folder, names[0], names)
    logging.info("Copied checkpoint of step %d (%s %.5g) to %s", step, self._metric, value, folder)

  def at_end(self, step: int) -> None:
    del step

  def _kept_checkpoints(self) -> list[tuple[float, int]]:
    """(score, step) of checkpoints an earlier run copied, best first."""
    folder = os.path.join(self._context.model_dir, self._name)
    steps = [
      int(m[1])
      for p in tf.io.gfile.glob(os.path.join(folder, "*.index"))
      if (m := re.search(r"-(\d+)\.index$", p))
    ]
    history = self._context.history
    kept = [(history[s][self._metric], s) for s in steps if self._metric in history.get(s, {})]
    return sorted(kept, key=lambda entry: entry[0], reverse=self._higher_is_better)


# The `train.exporters` sections of deephub's own exporters, in the order they run.
BUILT_IN = {
  "final": FinalExporter,
  "best": BestExporter,
  "latest": LatestExporter,
  "best_checkpoint_copier": BestCheckpointCopier,
}


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
    feeder: Feeder | None = None,
  ):
    """Args:
    config: the `train.exporters` section.
    model: the model being trained; exports hold its current weights.
    features_map: the train feeder's features, the serving inputs.
    model_dir: the run's folder.
    has_eval: whether the run evaluates (best-by-metric and latest exporters need it).
    feeder: the feeder trained on; when `features_map` does not name its
      features (in-memory data), serving takes the feeder's (serving_inputs.py).

    Raises:
      UserError: an exporter's config is invalid (e.g. it needs an eval feeder),
        or a custom exporter class cannot be built.
    """
    self._model_dir = model_dir
    self._module = None
    self._model, self._features_map, self._feeder = model, features_map, feeder
    history = read_scalars(os.path.join(model_dir, "eval")) if has_eval else {}
    context = ExportContext(
      where="", model_dir=model_dir, has_eval=has_eval, history=history, export=self._export
    )
    self._exporters: list[Exporter] = []
    for key, cls in BUILT_IN.items():
      section = config[key].to_dict()
      if section["name"]:
        self._exporters.append(cls(dataclasses.replace(context, where=f"train.exporters.{key}"), **section))
    for key, section in config.custom.items():
      where = f"train.exporters.custom.{key}"
      self._exporters.append(_custom(dataclasses.replace(context, where=where), dict(section.to_dict())))

  def after_eval(self, step: int, scalars: Mapping[str, float], checkpoint: str) -> None:
    """Runs every exporter on an evaluation of `checkpoint`."""
    for exporter in self._exporters:
      exporter.after_eval(step, scalars, checkpoint)

  def at_end(self, step: int) -> None:
    """Runs every exporter's end-of-training work at `step`."""
    for exporter in self._exporters:
      exporter.at_end(step)

  def _export(self, name: str) -> str:
    if self._module is None:  # Traced once, on first use, and shared by every exporter.
      inputs = serving_inputs(self._features_map, self._feeder)
      self._module = ServingModule(self._model, inputs.features_map, dtypes=inputs.dtypes)
    return write_saved_model(self._module, os.path.join(self._model_dir, "export", name))


def _custom(context: ExportContext, section: dict) -> Exporter:
  """A user's exporter: `type` 'package.module:Class', called as Class(context, **other keys)."""
  type_name = section.pop("type", "")
  cls = import_class(type_name, key=f"{context.where}.type", what="exporter")
  # Checked on the class before calling it, so that a config cannot call any
  # importable class (subprocess.Popen) with arguments of its choosing.
  if not all(callable(getattr(cls, hook, None)) for hook in ("after_eval", "at_end")):
    raise _not_an_exporter(context, type_name)
  try:
    exporter = cls(context, **section)
  except UserError as error:
    raise UserError(f"{context.where}: {error}") from None
  except TypeError as error:
    raise UserError(f"{context.where}: {type_name} refuses these arguments ({error}); fix them") from None
  if not isinstance(exporter, Exporter):
    raise _not_an_exporter(context, type_name)
  return exporter


def _not_an_exporter(context: ExportContext, type_name: str) -> UserError:
  return UserError(
    f"{context.where}.type {type_name!r} has no after_eval(step, scalars, checkpoint) and at_end(step); "
    "an exporter class must provide deephub.engine.exporter.Exporter"
  )

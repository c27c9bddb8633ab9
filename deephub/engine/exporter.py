"""The one interface of an exporter: what the training loop calls, and what it is built with.

deephub's exporters (`deephub.engine.exporters`: final, best, latest,
best-checkpoint copier) and a user's own class, named in
`train.exporters.custom.<key>.type` as 'package.module:Class' (in the old
YAML spelling, any other `module_path` than `tensorflow.estimator` or
`deephub.trainer.exporters`), are built and called the same way:

    exporter = Class(context, **args)   # args: the config keys but `type`
    exporter.after_eval(step, scalars, checkpoint)   # after each evaluation
    exporter.at_end(step)                            # when training ends

`context` is an `ExportContext`: the run's model_dir, whether it evaluates,
the earlier evaluations, a function that writes a SavedModel of the current
weights, and the config key of this exporter (for error messages). Raise
`deephub.errors.UserError` for a bad argument: it is shown as one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ExportContext:
  """What every exporter is built with (the first positional argument).

  Attributes:
    where: the exporter's config key, e.g. 'train.exporters.best'.
    model_dir: the run's folder.
    has_eval: whether the run evaluates (else `after_eval` is never called).
    history: `{step: {metric: value}}` of earlier evaluations in
      model_dir/eval (this run's and earlier runs'); empty without eval.
    export: `export(name)` writes a SavedModel of the current weights to
      model_dir/export/<name>/<unix seconds>/ and returns its path. Serving
      takes serialized tf.Examples parsed with the train feeder's features_map
      (or, when that lacks them, the train feeder's features: serving_inputs.py).
  """

  where: str
  model_dir: str
  has_eval: bool
  history: Mapping[int, Mapping[str, float]]
  export: Callable[[str], str]


@runtime_checkable
class Exporter(Protocol):
  """What the training loop calls on every exporter."""

  def after_eval(self, step: int, scalars: Mapping[str, float], checkpoint: str) -> None:
    """Called after each evaluation of `checkpoint` (a path prefix) at `step` with its scalars."""

  def at_end(self, step: int) -> None:
    """Called once when training ends at `step`."""

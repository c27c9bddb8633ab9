"""The Python API: `deephub.train_and_evaluate(config, train_feeder=..., eval_feeder=...)`.

The old framework trained from Python (`Trainer(...).train(model, train_feeder,
eval_feeder)`), also on in-memory arrays. This is that call: the variant
config gives the model and the schedule, and feeder objects, when given,
replace the feeders the config names. It trains into `config.model.model_dir`
exactly as `deep trainer train` does (same checkpoints, summaries and
resolved config). `deephub/__init__.py` re-exports it lazily, so `import
deephub` stays free of TensorFlow until this is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deephub.errors import UserError

if TYPE_CHECKING:  # Annotations only: importing these loads TensorFlow.
  import ml_collections

  from deephub.io.feeder import Feeder


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  *,
  train_feeder: Feeder | None = None,
  eval_feeder: Feeder | None = None,
) -> dict[str, float]:
  """Trains `config` into its model_dir, optionally on the given feeder objects.

  Args:
    config: a variant config, e.g. `deephub.config.variants.load_variant("mlp")`
      with keys changed as needed; `model.model_dir` must be set.
    train_feeder: any `deephub.io.feeder.Feeder` (e.g. `MemorySamplesFeeder(x,
      y)`), used instead of `train.train_feeder`.
    eval_feeder: a Feeder used instead of `train.eval_feeder`; evaluation
      follows the config's `validation_secs` / `validation_steps` and the end.

  Returns:
    The final evaluation's scalars (`loss` and the model's metrics), or {}
    without an eval feeder.

  Raises:
    UserError: a feeder that does not implement the Feeder interface, or
      any invalid config or data (as `deep trainer train` reports it).
  """
  from deephub import console

  console.load_tensorflow()  # Before the engine imports it: hides the no-GPU lines.
  from deephub.engine import train_and_evaluate as train_config  # Deferred: loads TensorFlow.
  from deephub.io.feeder import Feeder

  for name, feeder in (("train_feeder", train_feeder), ("eval_feeder", eval_feeder)):
    if feeder is not None and not isinstance(feeder, Feeder):
      raise UserError(
        f"{name} is a {type(feeder).__name__}, not a feeder; pass an object with batch_size, "
        "feature_names, label_names, dataset(epochs, *, input_context) and steps_per_epoch() "
        "(deephub.io.feeder.Feeder), e.g. deephub.io.MemorySamplesFeeder(x, y)"
      )
  return train_config(config, train_feeder=train_feeder, eval_feeder=eval_feeder)

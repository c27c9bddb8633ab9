"""The train and eval feeders as training uses them, through the Feeder Protocol only.

Feeders come from the config (`train.train_feeder`, `train.eval_feeder`) or
are given as objects (any class with the `deephub.io.feeder.Feeder`
members: TFRecord, Parquet, in-memory, a user's own). The engine calls the
required members, and the optional hooks only when a feeder has them
(`check_schema`, `report_corrupt_records`, `explain`, `describe`), so data
problems surface here, before any step runs.
"""

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping

import ml_collections
import tensorflow as tf

from deephub.errors import UserError
from deephub.io import make_feeder
from deephub.io.feeder import Feeder


@dataclasses.dataclass(frozen=True)
class TrainInputs:
  """The feeders of one training run and what was learnt checking them."""

  train: Feeder
  eval: Feeder | None
  steps_per_epoch: int
  # Summary scalars of the corrupted records the train feeder skips ({}: none skipped).
  corrupt_records: Mapping[str, float]


def prepare_inputs(
  config: ml_collections.ConfigDict, *, train_feeder: Feeder | None = None, eval_feeder: Feeder | None = None
) -> TrainInputs:
  """Builds (or takes) the feeders and checks them before anything trains.

  Args:
    config: the variant config (`train` section, `runtime.seed`).
    train_feeder: replaces `train.train_feeder` when given.
    eval_feeder: replaces `train.eval_feeder` when given.

  Raises:
    UserError: no label, data that does not match the declared features,
      no full batch in an epoch, or an evaluation period without eval data.
  """
  train = config.train
  if train_feeder is None:
    train_feeder = make_feeder(
      train.train_feeder,
      seed=config.runtime.seed,
      where="train.train_feeder",
      max_index_bytes=config.runtime.max_index_bytes,
    )
  if eval_feeder is None and train.eval_feeder.file_patterns:
    eval_feeder = make_feeder(train.eval_feeder, where="train.eval_feeder")
  check_eval_periods(train, has_eval=eval_feeder is not None)
  if not train_feeder.label_names:
    raise UserError("train.train_feeder.labels_map is empty; training needs at least one label")
  _call_hook(train_feeder, "check_schema", "train.train_feeder")
  if eval_feeder is not None:
    _call_hook(eval_feeder, "check_schema", "train.eval_feeder")
  corrupt = _call_hook(train_feeder, "report_corrupt_records") or {}
  with explained_data_loss(train_feeder, "train.train_feeder"):
    steps_per_epoch = train_feeder.steps_per_epoch()
  if steps_per_epoch == 0:
    source = _call_hook(train_feeder, "describe")
    raise UserError(
      f"train.train_feeder yields no batch of {train_feeder.batch_size} examples"
      f"{f' from {source}' if source else ''}; lower batch_size, set drop_remainder False or add data"
    )
  return TrainInputs(train_feeder, eval_feeder, steps_per_epoch, corrupt)


def check_eval_periods(train: ml_collections.ConfigDict, *, has_eval: bool) -> None:
  """Refuses an evaluation period when there is nothing to evaluate on.

  Raises:
    UserError: validation_secs or validation_steps set without eval data.
  """
  if has_eval:
    return
  for key in ("validation_secs", "validation_steps"):
    if train[key] is not None:
      raise UserError(
        f"train.{key} is {train[key]} but train.eval_feeder has no file_patterns; "
        f"set train.{key} to None, or give train.eval_feeder the files to evaluate on"
      )


@contextlib.contextmanager
def explained_data_loss(
  feeder: Feeder, where: str, on_error: Callable[[], None] | None = None
) -> Iterator[None]:
  """Turns a DataLossError into the feeder's UserError naming the corrupted file (its `explain` hook)."""
  try:
    yield
  except tf.errors.DataLossError as error:
    if on_error is not None:
      on_error()
    explain = getattr(feeder, "explain", None)
    if explain is None:
      raise
    raise explain(error, where) from None


def _call_hook(feeder: Feeder, name: str, *args):
  """Calls the optional Protocol hook `name` when the feeder has it; None otherwise."""
  hook = getattr(feeder, name, None)
  return hook(*args) if hook is not None else None

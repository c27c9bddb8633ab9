"""The one interface the engine uses to read data: `Feeder`.

TFRecord, Parquet and in-memory feeders implement it, and so can a user's own
class: the engine calls only what is written here. The optional hooks are
looked up with `getattr`, so a feeder without them still trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import tensorflow as tf


@runtime_checkable
class Feeder(Protocol):
  """Batches of `(features, labels)` dicts for training, evaluation and prediction.

  Required:
    batch_size: the global batch size (split across replicas by the feeder).
    feature_names / label_names: the keys of the features and labels dicts.
    dataset(epochs, input_context): the batches; `epochs=None` repeats
      forever. A pass is exactly `steps_per_epoch()` batches: batches never
      span two passes. With an `input_context` (from
      `strategy.distribute_datasets_from_function`) the feeder reads only its
      worker's share, in per-replica batches.
    steps_per_epoch(): batches in one pass.

  Optional hooks (the engine calls them when present):
    check_schema(where): raise a UserError when the data does not match the
      declared features; `where` is the config key to name.
    scan(): read every file once, returning per-file scans with `.error`;
      used before training when corrupted records are skipped.
    report_corrupt_records(): when the feeder skips corrupted records, scan
      the data once before training, log what will be skipped and return
      summary scalars (`input/corrupt_files_skipped`, ...); {} otherwise.
    explain(error, where): turn a tf.errors.DataLossError into a UserError.
    explain_parse_error(error, where): the same for a parse failure.
    describe(): what the feeder reads, for messages ('3 file(s)').
  """

  batch_size: int

  @property
  def feature_names(self) -> Sequence[str]: ...

  @property
  def label_names(self) -> Sequence[str]: ...

  def dataset(
    self, epochs: int | None = None, *, input_context: tf.distribute.InputContext | None = None
  ) -> tf.data.Dataset: ...

  def steps_per_epoch(self) -> int: ...

"""MemorySamplesFeeder: in-memory numpy arrays, dicts, lists or DataFrames as batches.

The legacy in-memory feeder: `x` (features) and `y` (labels) become
`({name: batch}, {name: batch})`. Names come from dict keys or DataFrame
columns; the columns of a plain array or list are named by their index
('0', '1', ...). pandas is optional: a DataFrame is recognised by its
`columns` / `to_numpy`, never imported here.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from deephub.errors import UserError
from deephub.io.examples_pipeline import replica_batch_size

Columns = dict[str, np.ndarray]


class MemorySamplesFeeder:
  """Feeds arrays held in memory; implements `deephub.io.feeder.Feeder`, so the engine trains from it."""

  def __init__(
    self,
    x: Any,
    y: Any = None,
    *,
    feed_as_dict: bool = True,
    batch_size: int = 128,
    drop_remainder: bool = False,
    shuffle: bool = False,
    seed: int | None = None,
    type: str = "MemorySamplesFeeder",  # noqa: A002 - legacy key name.
  ):
    """Converts the inputs to columns and checks their lengths.

    Args:
      x: features: a numpy array, a list, a dict of arrays/lists, a list of
        dicts (rows), or a pandas DataFrame.
      y: labels, in any of the same forms, or None for a feeder without labels.
      feed_as_dict: batches are `{name: tensor}` dicts (what the engine
        needs); False yields the arrays as they are (no dicts allowed then).
      batch_size: examples per batch.
      drop_remainder: drop a last batch smaller than batch_size.
      shuffle: shuffle the examples (the whole set) on every pass.
      seed: shuffle seed.

    Raises:
      UserError: x and y differ in length, columns differ in length, or a
        dict/DataFrame is given with feed_as_dict False.
    """
    del type  # Selects this class.
    if batch_size < 1:
      raise UserError(f"feeder batch_size is {batch_size}; set it to 1 or more")
    self.batch_size = batch_size
    self.drop_remainder = drop_remainder
    self.shuffle = shuffle
    self.seed = seed
    self.feed_as_dict = feed_as_dict
    if feed_as_dict:
      self.x, self.y = _columns(x, "x"), (None if y is None else _columns(y, "y"))
      self.feature_names = list(self.x)
      self.label_names = list(self.y or {})
    else:
      if _is_table(x) or _is_table(y):
        raise UserError("x or y is a dict or DataFrame; pass feed_as_dict=True to feed it by column name")
      self.x, self.y = np.asarray(x), (None if y is None else np.asarray(y))
      self.feature_names, self.label_names = [], []
    x_rows = _rows(self.x, "x")
    if self.y is not None and _rows(self.y, "y") != x_rows:
      raise UserError(
        f"x has {x_rows} examples but y has {_rows(self.y, 'y')}; give both the same number of rows"
      )
    self._num_examples = x_rows

  def dataset(
    self, epochs: int | None = None, *, input_context: tf.distribute.InputContext | None = None
  ) -> tf.data.Dataset:
    """Returns batches of `(x, y)` (or `x` alone); batches never span two passes.

    Args:
      epochs: passes over the examples; None repeats forever.
      input_context: given by `strategy.distribute_datasets_from_function`:
        this pipeline keeps every n-th example (n input pipelines) in
        per-replica batches of `batch_size / replicas`, as `batch_size` is
        the global batch.

    Raises:
      UserError: `batch_size` does not split evenly across the replicas.
    """
    batch_size = replica_batch_size(self.batch_size, input_context)
    data = self.x if self.y is None else (self.x, self.y)
    examples = tf.data.Dataset.from_tensor_slices(data)
    if input_context is not None and input_context.num_input_pipelines > 1:
      # Sharded before shuffling, so the pipelines' shares stay disjoint in every pass.
      examples = examples.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if self.shuffle:
      examples = examples.shuffle(max(1, self._num_examples), seed=self.seed)
    batches = examples.batch(batch_size, drop_remainder=self.drop_remainder)
    return batches.repeat(epochs).prefetch(tf.data.AUTOTUNE)

  def get_input_fn(self, epochs: int | None = None):
    """Legacy spelling: returns a callable that builds `dataset(epochs)`."""
    return lambda: self.dataset(epochs)

  def num_examples(self) -> int:
    return self._num_examples

  def steps_per_epoch(self, num_examples: int | None = None) -> int:
    """Batches in one pass."""
    n = self._num_examples if num_examples is None else num_examples
    return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

  def total_steps(self, epochs: int) -> int:
    """Batches in `epochs` passes: `epochs * steps_per_epoch()`, as batches never span two passes."""
    return epochs * self.steps_per_epoch()

  def describe(self) -> str:
    """Feeder hook: what it reads, for messages."""
    return f"{self._num_examples} examples in memory"

  def __repr__(self) -> str:
    return (
      f"MemorySamplesFeeder(examples={self._num_examples}, features={self.feature_names}, "
      f"labels={self.label_names}, batch_size={self.batch_size}, shuffle={self.shuffle})"
    )


def _is_table(value: Any) -> bool:
  return isinstance(value, Mapping) or hasattr(value, "columns")


def _columns(value: Any, where: str) -> Columns:
  """Named columns of any accepted input form."""
  if hasattr(value, "columns") and hasattr(value, "to_numpy"):  # A pandas DataFrame.
    return {str(column): value[column].to_numpy() for column in value.columns}
  if isinstance(value, Mapping):
    return {str(name): _array(column) for name, column in value.items()}
  if isinstance(value, list) and value and isinstance(value[0], Mapping):  # Rows as dicts.
    return {str(name): np.asarray([row[name] for row in value]) for name in value[0]}
  array = np.asarray(value)
  if array.ndim == 1:
    return {"0": array}
  if array.ndim == 2:
    return {str(i): array[:, i] for i in range(array.shape[1])}
  raise UserError(
    f"{where} is a {array.ndim}-D array; pass a dict {{name: array}} for features of more than one dimension"
  )


def _array(column: Any) -> np.ndarray:
  return column.to_numpy() if hasattr(column, "to_numpy") else np.asarray(column)


def _rows(value: Columns | np.ndarray, where: str) -> int:
  if not isinstance(value, dict):
    return len(value)
  lengths = {name: len(column) for name, column in value.items()}
  if len(set(lengths.values())) > 1:
    raise UserError(f"{where} columns differ in length: {lengths}; give every column the same number of rows")
  if not lengths:
    raise UserError(f"{where} has no columns; give at least one")
  return next(iter(lengths.values()))

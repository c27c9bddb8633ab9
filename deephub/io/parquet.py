"""ParquetExamplesFeeder: Parquet columns to batched feature dicts, through tensorflow-io.

The config is the TFRecord feeder's (`deephub.config.defaults.feeder_config` with
`type = 'ParquetExamplesFeeder'`): `features_map` / `labels_map` name
columns, and each entry's `dtype` is what the model receives, cast in the
graph from the column's Parquet type (int32 -> int64, double -> float32, ...).
tensorflow-io 0.37.1 reads primitive columns only, one value per row, so
shapes hold one element (`[]` or `[1]`).

Files open through `tf.io.gfile`, so `s3://` and the other tensorflow-io
filesystems work as for TFRecord files. Each file's footer (schema and row
count) is read once at construction: a missing column or an uncastable type
fails before training, and `num_examples()` reads no data.

The pipeline is the one the TFRecord feeder uses too, `ExamplesPipeline`
(files interleaved, shuffled, sharded, batched, prefetched, all in C++
kernels); this feeder gives it the Parquet parts: opening a file and
casting a batch of columns.
"""

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from deephub.config import defaults
from deephub.errors import UserError
from deephub.io import global_shuffle, remote
from deephub.io.examples_pipeline import (
  CHUNK_RECORDS,
  Batching,
  ExamplesPipeline,
  check_feeder_keys,
  list_files,
)
from deephub.io.features import example_spec

# The feeder config's defaults: the keyword defaults below come from there.
_DEFAULT = defaults.feeder_config()
_MAGIC = b"PAR1"
# Parquet column types each config dtype accepts (cast in the graph).
_READS_FROM = {
  tf.int64: (tf.int64, tf.int32, tf.bool),
  tf.float32: (tf.float32, tf.float64, tf.int64, tf.int32, tf.bool),
  tf.string: (tf.string,),
}


class ParquetExamplesFeeder:
  """Reads Parquet files described by a feeder config (same keys as TFRecordExamplesFeeder)."""

  def __init__(
    self,
    *,
    file_patterns: Sequence[str] | str,
    batch_size: int,
    features_map: Mapping[str, Any],
    labels_map: Mapping[str, Any] | None = None,
    shuffle: bool | str = _DEFAULT.shuffle,
    shuffle_buffer_size: int = _DEFAULT.shuffle_buffer_size,
    max_examples: int = _DEFAULT.max_examples,
    drop_remainder: bool = _DEFAULT.drop_remainder,
    compression: str = _DEFAULT.compression,
    num_parallel_reads: int = _DEFAULT.num_parallel_reads,
    num_parallel_maps: int | None = _DEFAULT.num_parallel_maps,
    prefetch: int | None = _DEFAULT.prefetch,
    skip_corrupt_records: bool = _DEFAULT.skip_corrupt_records,
    deterministic: bool = _DEFAULT.deterministic,
    auto_generate_meta: bool = _DEFAULT.auto_generate_meta,
    seed: int | None = None,
    type: str = "ParquetExamplesFeeder",  # noqa: A002 - legacy key name.
  ):
    """Loads tensorflow-io, lists the files and checks every file's columns.

    Args mirror the feeder config keys (see `deephub.config.defaults.feeder_config`),
    as for TFRecordExamplesFeeder, except:
      shuffle: False or True: rows have no record offsets, so no 'global'.
      features_map: `{column: {type: FixedLenFeature, shape: [], dtype}}`.
      compression: must be '': Parquet compresses inside the file.
      skip_corrupt_records: must be False (TFRecord files only).
      auto_generate_meta: ignored: row counts come from the file footers.

    Raises:
      UserError: tensorflow-io unavailable, a pattern matching nothing, a
        column missing from a file or of a type the dtype cannot take, or
        shuffle 'global'.
    """
    del type, auto_generate_meta
    if compression:
      raise UserError(
        f"feeder compression is {compression!r}; Parquet files compress internally, so set it to ''"
      )
    if skip_corrupt_records:
      raise UserError("feeder skip_corrupt_records applies to TFRecord files only; set it False for Parquet")
    if shuffle == "global":  # Rows are not TFRecord records: this raises, naming shuffle True.
      global_shuffle.check_usable(
        feeder=self.__class__.__name__, addressable=False, compression="", records=None, max_index_bytes=0
      )
    remote.load_tensorflow_io(needed_for="feeder type 'ParquetExamplesFeeder'")
    if isinstance(file_patterns, str):
      file_patterns = [file_patterns]
    check_feeder_keys(
      file_patterns=file_patterns,
      batch_size=batch_size,
      features_map=features_map,
      shuffle=shuffle,
      shuffle_buffer_size=shuffle_buffer_size,
      max_examples=max_examples,
      num_parallel_maps=num_parallel_maps,
      prefetch=prefetch,
    )
    self.files, _ = list_files(file_patterns)
    self.batch_size = batch_size
    self.shuffle = shuffle
    self.shuffle_buffer_size = shuffle_buffer_size
    self.max_examples = max_examples
    self.drop_remainder = drop_remainder
    # What the engine asks of every feeder: no compression, no corrupt-record skipping.
    self.compression = ""
    self.skip_corrupt_records = False
    self.num_parallel_reads = num_parallel_reads
    self.num_parallel_maps = num_parallel_maps
    self.prefetch = prefetch
    self.deterministic = deterministic
    self.seed = seed
    self._example_spec = example_spec(features_map, labels_map)
    self.feature_names = self._example_spec.feature_names
    self.label_names = self._example_spec.label_names
    self._spec = self._example_spec.parsing
    for name, spec in self._spec.items():
      if not isinstance(spec, tf.io.FixedLenFeature) or int(np.prod(spec.shape)) != 1:
        raise UserError(
          f"column {name!r}: Parquet columns hold one value per row; set its type to "
          "FixedLenFeature and its shape to []"
        )
    footers = [_read_footer(path) for path in self.files]
    self._column_dtypes = _column_dtypes(self.files, footers, self._spec)
    self._rows = [min(footer[name][0] for name in self._spec) for footer in footers]
    batching = Batching(
      batch_size=batch_size,
      shuffle=shuffle,
      shuffle_buffer_size=shuffle_buffer_size,
      max_examples=max_examples,
      drop_remainder=drop_remainder,
      num_parallel_reads=num_parallel_reads,
      deterministic=deterministic,
      # Without a seed, one drawn here keeps the epochs of this run consistent.
      seed=seed if seed is not None else random.randrange(2**31),
      num_parallel_maps=num_parallel_maps,
      prefetch=prefetch,
    )
    self._pipeline = ExamplesPipeline(
      files=self.files,
      batching=batching,
      read_chunks=lambda path, chunk: self._read_file(path).batch(chunk),
      # Rows hold one primitive value per column: full chunks stay small.
      chunk_records=lambda: CHUNK_RECORDS,
      decode=self._decode,
      feature_names=self.feature_names,
      label_names=self.label_names,
      decode_chunks=self._example_spec.fixed_shapes,
    )

  def dataset(
    self, epochs: int | None = None, *, input_context: tf.distribute.InputContext | None = None
  ) -> tf.data.Dataset:
    """Batches of `(features, labels)` dicts, or `features` alone (see TFRecordExamplesFeeder.dataset)."""
    return self._pipeline.dataset(epochs, input_context=input_context)

  def get_input_fn(self, epochs: int | None = None):
    """Legacy spelling: returns a callable that builds `dataset(epochs)`."""
    return lambda: self.dataset(epochs)

  def num_examples(self) -> int:
    """Rows in one pass, from the file footers (no data read)."""
    return self._pipeline.examples_in_pass(sum(self._rows))

  def steps_per_epoch(self, num_examples: int | None = None) -> int:
    """Returns the number of batches in one pass over the files."""
    return self._pipeline.steps_per_epoch(self.num_examples() if num_examples is None else num_examples)

  def total_steps(self, epochs: int) -> int:
    """Batches in `epochs` passes: `epochs * steps_per_epoch()`, as batches never span two passes."""
    return epochs * self.steps_per_epoch()

  def describe(self) -> str:
    """Feeder hook: what it reads, for messages."""
    return f"{len(self.files)} Parquet file(s)"

  def check_schema(self, where: str) -> None:
    """Nothing to do: every file's footer was checked against the maps in __init__."""
    del where

  def explain(self, error: tf.errors.DataLossError, where: str) -> UserError:
    return UserError(f"{where}: unreadable Parquet data ({error.message.splitlines()[0][:200]}); "
                     "rewrite the file named above or remove it from file_patterns")  # fmt: skip

  def _read_file(self, path: tf.Tensor) -> tf.data.Dataset:
    """The rows of one file, one `{column: scalar}` element each."""
    from tensorflow_io import IODataset  # Loaded (and checked) in __init__.

    # In a graph (inside interleave) tensorflow-io needs each column's spec.
    columns = {name: tf.TensorSpec([], dtype) for name, dtype in self._column_dtypes.items()}
    return IODataset.from_parquet(path, columns=columns)

  def _decode(self, batch: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """A batch of rows as the configured dtypes and shapes (a cast in the graph)."""
    return {
      name: tf.reshape(tf.cast(batch[name], spec.dtype), [-1, *spec.shape])
      for name, spec in self._spec.items()
    }


def _read_footer(path: str) -> dict[str, tuple[int, tf.DType]]:
  """Returns `{column: (rows, dtype)}` from a Parquet file's footer."""
  from tensorflow_io.python.ops import core_ops

  _check_framing(path)
  try:
    names, shapes, dtypes = core_ops.io_parquet_readable_info(
      path, shared=path, container="DeephubParquetFooter"
    )
  except tf.errors.OpError as error:
    reason = error.message.rsplit("}} ", 1)[-1].split(" [Op:")[0]  # Drops the op's name and device.
    raise UserError(
      f"{path} is not a readable Parquet file ({reason}); check file_patterns or rewrite the file"
    ) from None
  return {
    name.decode(): (int(shape[0]), tf.as_dtype(int(dtype)))
    for name, shape, dtype in zip(names.numpy(), shapes.numpy(), dtypes.numpy(), strict=True)
  }


def _check_framing(path: str) -> None:
  """Raises unless the file has Parquet's framing: `PAR1`, data, footer, footer length, `PAR1`.

  tensorflow-io 0.37.1 crashes the process (SIGSEGV) on a file that is not
  Parquet or whose footer is cut off, so this cheap check (two small reads,
  also on s3://) comes first. A footer that is present but corrupt can still
  crash it.
  """
  with tf.io.gfile.GFile(path, "rb") as f:
    size = f.size()
    head = f.read(4)
    f.seek(max(0, size - 8))
    tail = f.read(8)
  if size < 12 or head != _MAGIC or tail[4:] != _MAGIC:
    raise UserError(
      f"{path} is not a Parquet file (no PAR1 marker at its start and end); check file_patterns"
    )
  footer_bytes = int.from_bytes(tail[:4], "little")
  if not 0 < footer_bytes <= size - 12:
    raise UserError(
      f"{path} is a truncated Parquet file (footer of {footer_bytes} bytes in a {size}-byte file); "
      "rewrite the file"
    )


def _column_dtypes(
  files: list[str], footers: list[dict[str, tuple[int, tf.DType]]], spec: Mapping[str, tf.io.FixedLenFeature]
) -> dict[str, tf.DType]:
  """The Parquet type of each configured column, the same in every file.

  Raises:
    UserError: a column is missing, changes type between files, or cannot be
      cast to its configured dtype.
  """
  dtypes = {}
  for path, footer in zip(files, footers, strict=True):
    for name, entry in spec.items():
      if name not in footer:
        raise UserError(
          f"{path} has no column {name!r} (it has {', '.join(sorted(footer))}); fix features_map/labels_map"
        )
      dtype = footer[name][1]
      if dtype not in _READS_FROM[entry.dtype]:
        raise UserError(
          f"{path}: column {name!r} holds {dtype.name}, which cannot become {entry.dtype.name}; "
          f"set its dtype to one of {', '.join(_dtype_names(dtype))}"
        )
      if dtypes.setdefault(name, dtype) != dtype:
        raise UserError(
          f"{path}: column {name!r} holds {dtype.name} where {files[0]} holds {dtypes[name].name}; "
          "rewrite the files with one schema"
        )
  return dtypes


def _dtype_names(column_dtype: tf.DType) -> list[str]:
  names = [target.name for target, sources in _READS_FROM.items() if column_dtype in sources]
  return names or ["(none: deephub cannot read this Parquet type)"]

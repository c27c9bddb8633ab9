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

The pipeline is the TFRecord feeder's (files interleaved, shuffled, batched,
prefetched, all in C++ kernels); only opening a file and decoding a batch
differ, so this class overrides those two steps.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from deephub.errors import UserError
from deephub.io import remote
from deephub.io.tfrecord import CHUNK_RECORDS, TFRecordExamplesFeeder

_MAGIC = b"PAR1"
# Parquet column types each config dtype accepts (cast in the graph).
_READS_FROM = {
  tf.int64: (tf.int64, tf.int32, tf.bool),
  tf.float32: (tf.float32, tf.float64, tf.int64, tf.int32, tf.bool),
  tf.string: (tf.string,),
}


class ParquetExamplesFeeder(TFRecordExamplesFeeder):
  """Reads Parquet files described by a feeder config (same keys as TFRecordExamplesFeeder)."""

  # Rows are not TFRecord records: no shuffle 'global', shards by file.
  records_addressable = False

  def __init__(
    self,
    *,
    features_map: Mapping[str, Any],
    labels_map: Mapping[str, Any] | None = None,
    compression: str = "",
    type: str = "ParquetExamplesFeeder",  # noqa: A002 - legacy key name.
    **options: Any,
  ):
    """Loads tensorflow-io, lists the files and checks every file's columns.

    Args:
      features_map: `{column: {type: FixedLenFeature, shape: [], dtype}}`.
      labels_map: same shape as features_map; empty for a feeder without labels.
      compression: must be '': Parquet compresses inside the file.
      type: selects this class.
      **options: the other feeder keys, as for TFRecordExamplesFeeder.

    Raises:
      UserError: tensorflow-io unavailable, a pattern matching nothing, a
        column missing from a file or of a type the dtype cannot take.
    """
    del type
    if compression:
      raise UserError(
        f"feeder compression is {compression!r}; Parquet files compress internally, so set it to ''"
      )
    if options.get("skip_corrupt_records"):
      raise UserError("feeder skip_corrupt_records applies to TFRecord files only; set it False for Parquet")
    remote.load_tensorflow_io(needed_for="feeder type 'ParquetExamplesFeeder'")
    super().__init__(features_map=features_map, labels_map=labels_map, **options)
    for name, spec in self._spec.items():
      if not isinstance(spec, tf.io.FixedLenFeature) or int(np.prod(spec.shape)) != 1:
        raise UserError(
          f"column {name!r}: Parquet columns hold one value per row; set its type to "
          "FixedLenFeature and its shape to []"
        )
    footers = [_read_footer(path) for path in self.files]
    self._column_dtypes = _column_dtypes(self.files, footers, self._spec)
    self._rows = [min(footer[name][0] for name in self._spec) for footer in footers]

  def num_examples(self) -> int:
    """Rows in one pass, from the file footers (no data read)."""
    total = sum(self._rows)
    return min(total, self.max_examples) if self.max_examples >= 0 else total

  def _metadata_counts(self, auto_generate: bool) -> None:
    """Row counts come from the Parquet footers instead (see num_examples)."""
    del auto_generate

  def _chunk_records(self) -> int:
    """Rows hold one primitive value per column: full chunks stay small."""
    return CHUNK_RECORDS

  def check_schema(self, where: str) -> None:
    """Nothing to do: every file's footer was checked against the maps in __init__."""
    del where

  def explain(self, error: tf.errors.DataLossError, where: str) -> UserError:
    return UserError(f"{where}: unreadable Parquet data ({error.message.splitlines()[0][:200]}); "
                     "rewrite the file named above or remove it from file_patterns")  # fmt: skip

  def _read_file(self, path: tf.Tensor) -> tf.data.Dataset:
    from tensorflow_io import IODataset  # Loaded (and checked) in __init__.

    # In a graph (inside interleave) tensorflow-io needs each column's spec.
    columns = {name: tf.TensorSpec([], dtype) for name, dtype in self._column_dtypes.items()}
    return IODataset.from_parquet(path, columns=columns)

  def _decode(self, batch: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
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

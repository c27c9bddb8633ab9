"""Checks of TFRecord data against its config, run on the host before and
after the pipeline, never per element inside it.

- `check_schema` reads one record and compares it with `features_map` /
  `labels_map`, so a mismatch is reported before training starts.
- `scan_files` reads each file once to find corrupted or truncated ones.
"""

import dataclasses
import re
from collections.abc import Sequence

import tensorflow as tf

from deephub.errors import UserError
from deephub.io.features import ExampleSpec
from deephub.io.tfrecord_format import RECORD_OVERHEAD_BYTES

_KIND_OF_DTYPE = {"int64": "int64_list", "float32": "float_list", "string": "bytes_list"}
_DTYPE_OF_KIND = {kind: dtype for dtype, kind in _KIND_OF_DTYPE.items()}


def check_schema(files: Sequence[str], spec: ExampleSpec, *, compression: str, where: str) -> None:
  """Compares the first record of the first non-empty file with the config maps.

  Args:
    files: the feeder's files.
    spec: the feeder's features_map and labels_map, as parsed.
    compression: '', 'GZIP' or 'ZLIB'.
    where: config path of the feeder, for messages.

  Raises:
    UserError: a configured feature is missing, or has another dtype or size.
  """
  for path in files:
    records = list(tf.data.TFRecordDataset(path, compression_type=compression).take(1))
    if records:
      break
  else:
    return  # No records at all: the step count check reports it.
  example = tf.train.Example.FromString(records[0].numpy())
  found = example.features.feature
  for map_name, name, entry in spec.entries():
    key = f"{where}.{map_name}.{name}"
    if name not in found:
      if isinstance(entry, tf.io.FixedLenFeature) and entry.default_value is not None:
        continue  # Examples without it get the default.
      raise UserError(f"{key}: {path} has no feature {name!r}; it has {sorted(found)}")
    kind = found[name].WhichOneof("kind")
    dtype = entry.dtype.name  # An ImageFeature's is string: it holds the encoded bytes.
    if kind is not None and kind != _KIND_OF_DTYPE.get(dtype):
      raise UserError(
        f"{key}: dtype is {dtype} but {path} holds "
        f"{_DTYPE_OF_KIND.get(kind, kind)}; set dtype: {_DTYPE_OF_KIND.get(kind, kind)}"
      )
    expected = spec.values_per_example(map_name, name, entry)
    values = len(getattr(found[name], kind).value) if kind else 0
    if expected is not None and values != expected:
      raise UserError(
        f"{key}: shape {list(entry.shape)} needs {expected} values but "
        f"{path} has {values}; fix shape or use VarLenFeature"
      )


@dataclasses.dataclass
class FileScan:
  """What one pass over a file found."""

  path: str
  records: int
  error: str = ""  # The DataLossError message, '' for a clean file.
  skipped_bytes: int = 0  # Uncompressed files only: bytes skipped as corrupt.
  # Damaged ranges skipped by resynchronising (native scan); 0 when the
  # file was read with tf.data, which skips everything after the damage.
  corrupt_ranges: int = 0


def scan_files(files: Sequence[str], *, compression: str) -> list[FileScan]:
  """Reads every file once (C++ reduce) and reports records and corruption."""
  scans = []
  for path in files:
    dataset = tf.data.TFRecordDataset(path, compression_type=compression)
    try:
      count, size = _count(dataset)
      scans.append(FileScan(path, count))
    except tf.errors.DataLossError as error:
      count, size = _count(dataset.ignore_errors())
      scan = FileScan(path, count, error=_short(error))
      if not compression:
        scan.skipped_bytes = tf.io.gfile.stat(path).length - size
      scans.append(scan)
  return scans


def data_loss_error(
  files: Sequence[str], *, compression: str, where: str, error: tf.errors.DataLossError
) -> UserError:
  """Turns a DataLossError from the pipeline into an error naming the bad file."""
  bad = [scan for scan in scan_files(files, compression=compression) if scan.error]
  if not bad:
    return UserError(
      f"{where}: corrupted input data ({_short(error)}); run `deep utils validate "
      "PATTERN --deep-check` on the files"
    )
  names = ", ".join(f"{scan.path} ({scan.error}, after record {scan.records})" for scan in bad[:3])
  return UserError(
    f"{where}: corrupted TFRecord file {names}; replace it, list all bad files with "
    f"`deep utils validate PATTERN --deep-check`, or set {where}.skip_corrupt_records True"
  )


def _count(dataset: tf.data.Dataset) -> tuple[int, int]:
  count, size = dataset.reduce(
    (tf.constant(0, tf.int64), tf.constant(0, tf.int64)),
    lambda acc, record: (
      acc[0] + 1,
      acc[1] + tf.cast(tf.strings.length(record), tf.int64) + RECORD_OVERHEAD_BYTES,
    ),
  )
  return int(count), int(size)


def _short(error: tf.errors.OpError) -> str:
  """The useful part of a DataLossError ('truncated record at 459')."""
  match = re.search(r"(truncated record at \d+|corrupted record at \d+)", error.message)
  return match.group(1) if match else error.message.splitlines()[0][:200]

"""TFRecord scanning and reading by offset, in C++ (`tfrecord_ops.cc`).

`tfrecord_scan` walks a file's framing once: every valid record's offset and
length, the byte ranges it skipped as corrupt (it resynchronises after
damage instead of giving up the rest of the file), the size and, when asked,
the md5. `tfrecord_read` then reads records by those offsets inside a
`tf.data` pipeline, checking each record's data CRC.

Both work on uncompressed TFRecord files only: a GZIP or ZLIB stream cannot be
entered at an offset, so compressed files keep the `tf.data.TFRecordDataset` paths.

When the native library is unavailable (no compiler; `DEEPHUB_NATIVE_OPS=0`)
`available()` is False and both functions raise `NativeOpsUnavailableError`;
callers check `available()` and use their pure-TensorFlow path instead.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from deephub.io.tfrecord_format import RECORD_OVERHEAD_BYTES
from deephub.ops import loader


class NativeOpsUnavailableError(RuntimeError):
  """The native library is not loaded; `loader.status()` says why."""


@dataclasses.dataclass(frozen=True)
class TFRecordScan:
  """What one pass over a TFRecord file found (byte offsets are from the file's start).

  Attributes:
    path: the file scanned.
    offsets: int64 [records], where each valid record's header starts.
    lengths: int64 [records], each valid record's data length.
    corrupt_offsets: int64 [ranges], where each skipped corrupt range starts.
    corrupt_lengths: int64 [ranges], the bytes in each skipped range.
    file_size: bytes in the file.
    md5: hex md5 of the whole file, '' unless the scan was asked for it.
  """

  path: str
  offsets: np.ndarray
  lengths: np.ndarray
  corrupt_offsets: np.ndarray
  corrupt_lengths: np.ndarray
  file_size: int
  md5: str

  @property
  def num_records(self) -> int:
    return len(self.offsets)

  @property
  def corrupt_bytes(self) -> int:
    return int(self.corrupt_lengths.sum())

  @property
  def trailing_bytes(self) -> int:
    """Bytes after the last record too few to hold a header (TensorFlow ignores them too)."""
    ends = [0]
    if len(self.offsets):
      ends.append(int(self.offsets[-1] + self.lengths[-1]) + RECORD_OVERHEAD_BYTES)
    if len(self.corrupt_offsets):
      ends.append(int(self.corrupt_offsets[-1] + self.corrupt_lengths[-1]))
    return self.file_size - max(ends)


def available() -> bool:
  """True when the native ops are loaded (loading, or rebuilding, them on first call)."""
  return loader.load() is not None


def _library():
  library = loader.load()
  if library is None:
    raise NativeOpsUnavailableError(loader.status().describe())
  return library


def tfrecord_scan(path: str, *, verify_data_crc: bool = True, md5: bool = False) -> TFRecordScan:
  """Scans an uncompressed TFRecord file once, front to back, in C++ (eagerly).

  Each record's length CRC is checked and, with `verify_data_crc`, its data
  CRC. At a bad header, a length that does not fit in the rest of the file,
  or bad data, the scan resynchronises: it searches forward, byte by byte,
  for the next position where a header's length CRC and that record's data
  CRC both verify, records the skipped range as corrupt, and goes on. No
  length read from the file is used before it is checked against the bytes
  that remain, so hostile files cost time proportional to their size and a
  few MB of memory.

  Args:
    path: any path TensorFlow's file systems open (local, gs://, s3:// with
      tensorflow-io loaded).
    verify_data_crc: also check each record's data CRC. False reads only the
      headers when records are large (record counting); damaged data then
      goes unnoticed unless its header is damaged too.
    md5: also compute the md5 of the whole file (every byte is read).

  Returns:
    The records' places, the corrupt ranges, the size and the md5.

  Raises:
    NativeOpsUnavailableError: the native library is not loaded.
    tf.errors.OpError: the file cannot be opened or read (the message names
      the file and byte offset).
  """
  outputs = _library().deephub_tfrecord_scan(path, verify_data_crc=verify_data_crc, md5=md5)
  offsets, lengths, corrupt_offsets, corrupt_lengths, file_size, md5_hex = (t.numpy() for t in outputs)
  return TFRecordScan(
    path=path,
    offsets=offsets,
    lengths=lengths,
    corrupt_offsets=corrupt_offsets,
    corrupt_lengths=corrupt_lengths,
    file_size=int(file_size),
    md5=md5_hex.decode("ascii"),
  )


def tfrecord_read(
  path: tf.Tensor | str, offsets: tf.Tensor, lengths: tf.Tensor, *, max_merge_gap_bytes: int = 256 << 10
) -> tf.Tensor:
  """Reads the records at `offsets` (with data `lengths`) of an uncompressed TFRecord file.

  A graph op: use it inside `tf.data` maps and `tf.function`s. Records
  whose places are close are fetched in one read; every record's header and
  data CRC are checked.

  Args:
    path: scalar string, the file.
    offsets: int64 [n], where each record's header starts (from `tfrecord_scan`).
    lengths: int64 [n], each record's data length.
    max_merge_gap_bytes: a record that starts at most this many bytes after
      the one before it in `offsets` ends is fetched in the same read (the gap
      is read too). 0 merges only records that touch; a record before the
      previous one always starts a new read.

  Returns:
    string [n], the records' data, in the order asked.

  Raises:
    NativeOpsUnavailableError: the native library is not loaded.
    tf.errors.InvalidArgumentError: a place lies outside the file.
    tf.errors.DataLossError: a record at a given place does not verify (the
      file changed since the scan); the message names the file and offset.
  """
  return _library().deephub_tfrecord_read(path, offsets, lengths, max_merge_gap_bytes=max_merge_gap_bytes)

"""Reading TFRecord files by record offset, so a damaged record costs only itself.

`tf.data.TFRecordDataset` stops at the first bad record, and TFRecord
framing has no sync marker, so `ignore_errors()` gives up the rest of the
file. With `skip_corrupt_records: True` (uncompressed files, native ops
loaded), the feeder instead scans each file once on the host with
`deephub.ops.tfrecord.tfrecord_scan`, which resynchronises past damage, and
its pipeline reads the good records by offset with `tfrecord_read`, in
chunks, inside the graph: no Python runs per record.
"""

import concurrent.futures
import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from deephub.ops import tfrecord as native


@dataclasses.dataclass(frozen=True)
class RecordPlaces:
  """Where the good records of each file are.

  Attributes:
    scans: one native scan per file, in `files` order.
    offsets: int64, every good record's offset, file after file.
    lengths: int64, their data lengths.
    starts: int64 [files + 1], file i's records are [starts[i], starts[i + 1]).
  """

  files: list[str]
  scans: list[native.TFRecordScan]
  offsets: np.ndarray
  lengths: np.ndarray
  starts: np.ndarray


def scan_files(files: Sequence[str]) -> RecordPlaces:
  """Scans every file once (data CRCs checked), files in parallel, one thread per CPU.

  Raises:
    tf.errors.OpError: a file cannot be opened or read.
  """
  workers = max(1, min(len(files), len(os.sched_getaffinity(0))))
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    scans = list(pool.map(native.tfrecord_scan, files))
  counts = [scan.num_records for scan in scans]
  return RecordPlaces(
    files=list(files),
    scans=scans,
    offsets=np.concatenate([scan.offsets for scan in scans]).astype(np.int64),
    lengths=np.concatenate([scan.lengths for scan in scans]).astype(np.int64),
    starts=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
  )


def read_chunks(places: RecordPlaces, path: tf.Tensor, chunk_records: int) -> tf.data.Dataset:
  """The good records of `path` (one of `places.files`), in order, as string vectors of up to `chunk_records`.

  Each chunk is one `tfrecord_read`: neighbouring records come in one read
  and every record's data CRC is checked again (the file may have changed).
  """
  files = tf.constant(places.files)
  offsets = tf.constant(places.offsets)
  lengths = tf.constant(places.lengths)
  starts = tf.constant(places.starts)
  index = tf.argmax(tf.cast(tf.equal(files, path), tf.int32), output_type=tf.int64)
  begin, end = starts[index], starts[index + 1]

  def read(first: tf.Tensor) -> tf.Tensor:
    last = tf.minimum(first + chunk_records, end)
    return native.tfrecord_read(path, offsets[first:last], lengths[first:last])

  return tf.data.Dataset.range(begin, end, chunk_records).map(read)

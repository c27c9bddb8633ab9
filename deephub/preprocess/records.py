"""What both preprocessors share: tf.Example fields, crash-safe TFRecord files, metadata.

A TFRecord file is written under a hidden temporary name in the same folder
and renamed into place only once it is complete, so a reader (or a resumed
run) never sees half a file, and `train-*` globs never match a temporary one.
"""

import os
from collections.abc import Iterable, Sequence

import tensorflow as tf

from deephub.io import metadata

TEMP_PREFIX = ".tmp-"


def bytes_feature(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def int64_feature(values: int | Sequence[int]) -> tf.train.Feature:
  values = [values] if isinstance(values, int) else list(values)
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def temp_path(path: str) -> str:
  """The hidden name `path` is written under before the rename."""
  return os.path.join(os.path.dirname(path), TEMP_PREFIX + os.path.basename(path))


def write_records(path: str, records: Iterable[bytes]) -> int:
  """Writes serialized records to `path` via a temporary name; returns their count.

  If `records` raises (an interrupt, a bad input), `path` is left as it was
  and the temporary file is removed.
  """
  temp = temp_path(path)
  count = 0
  try:
    with tf.io.TFRecordWriter(temp) as writer:
      for record in records:
        writer.write(record)
        count += 1
  except BaseException:
    if os.path.exists(temp):
      os.remove(temp)
    raise
  os.replace(temp, path)
  return count


def write_metadata_entries(
  folder: str, entries: dict[str, metadata.FileEntry], drop: Iterable[str] = ()
) -> None:
  """Merges `entries` into the folder's `_tfrecord_metadata.json` (the feeders' format), removing `drop`.

  Entries of other files in the folder are kept.
  """
  merged = metadata.read_metadata(folder)
  for name in drop:
    merged.pop(name, None)
  merged.update(entries)
  metadata.write_metadata(folder, merged)

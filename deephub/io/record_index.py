"""The record index of TFRecord files: where every record starts, so any record can be read alone.

`shuffle: 'global'` (and record-exact sharding across workers) reads records
in an arbitrary order with the native `tfrecord_read` op, which needs each
record's byte offset and data length. This module builds that index with one
headers-only `tfrecord_scan` per file (data CRCs are checked later, when the
records are read), caches it, and holds it as int64 tensors:

  offsets  int64 [records]   where each record's header starts in its file
  lengths  int64 [records]   each record's data length
  starts   int64 [files + 1] file i holds the records [starts[i], starts[i + 1])

That is 16 bytes per record (16 MB per million records, 1.6 GB for 100
million), checked against `runtime.max_index_bytes` before anything is read.

Cache. When the folder's `_tfrecord_metadata.json` has an entry for the file
and its size still matches, the index goes beside it, in
`<folder>/_tfrecord_index/<file>.npz`, stamped with the entry's md5 (a
regenerated entry, so a changed file, invalidates it). The JSON itself is
not touched, so version-1 readers read it as before. Otherwise (no entry, a
stale one, a folder we cannot write) it goes in the cache folder,
`$DEEPHUB_INDEX_CACHE` or `~/.cache/deephub/record_index`, keyed by path,
size and modification time.
"""

import concurrent.futures
import dataclasses
import hashlib
import io
import logging
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from deephub.errors import UserError
from deephub.io import filesystem, metadata
from deephub.ops import tfrecord as native

# The folder beside `_tfrecord_metadata.json` that holds the cached indexes.
INDEX_DIRNAME = metadata.INDEX_DIRNAME
CACHE_VARIABLE = "DEEPHUB_INDEX_CACHE"
# An int64 offset and an int64 length per record.
BYTES_PER_RECORD = 16
# Bump when the cached arrays change meaning: older caches are then rebuilt.
_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class RecordIndex:
  """Every record's place in a list of files, as int64 tensors (16 bytes per record).

  Attributes:
    files: the files, in the order their records are numbered.
    offsets: int64 [records], where each record's header starts in its file.
    lengths: int64 [records], each record's data length.
    starts: int64 [files + 1], file i holds records [starts[i], starts[i + 1]).
    counts: records per file.
    data_bytes: the records' data bytes summed (sizes reads).
  """

  files: list[str]
  offsets: tf.Tensor
  lengths: tf.Tensor
  starts: tf.Tensor
  counts: list[int]
  data_bytes: int

  @property
  def num_records(self) -> int:
    return sum(self.counts)


def check_fits(records: int, max_index_bytes: int, *, where: str) -> None:
  """Raises a one-line UserError when an index of `records` exceeds `max_index_bytes`."""
  needed = records * BYTES_PER_RECORD
  if needed > max_index_bytes:
    raise UserError(
      f"{where}: the record index of {records:,} records needs {_size(needed)} "
      f"({BYTES_PER_RECORD} bytes per record), more than runtime.max_index_bytes "
      f"({_size(max_index_bytes)}); use shuffle: True (a buffer shuffle) or raise "
      "runtime.max_index_bytes"
    )


def _size(num_bytes: int) -> str:
  """`num_bytes` for a message: GiB, MiB or bytes."""
  if num_bytes >= 2**30:
    return f"{num_bytes / 2**30:.2f} GiB"
  return f"{num_bytes / 2**20:.1f} MiB" if num_bytes >= 2**20 else f"{num_bytes:,} bytes"


def build(
  files: Sequence[str],
  *,
  max_index_bytes: int,
  where: str,
  expected_records: int | None = None,
  verify_data_crc: bool = False,
) -> RecordIndex:
  """Returns the index of `files`, read from the cache or scanned (files in parallel).

  Args:
    files: uncompressed TFRecord files.
    max_index_bytes: the most the index may take (`runtime.max_index_bytes`).
    where: config key named in errors (e.g. 'feeder shuffle').
    expected_records: the records the metadata counts, when known: checked
      against `max_index_bytes` before any file is scanned.
    verify_data_crc: check every record's data while scanning (a tolerant
      scan for `skip_corrupt_records`); such indexes are not cached, since
      they depend on what was readable.

  Raises:
    UserError: the index would exceed `max_index_bytes`, or a file cannot be read.
  """
  if expected_records is not None:
    check_fits(expected_records, max_index_bytes, where=where)
  workers = max(1, min(len(files), len(os.sched_getaffinity(0))))
  read = (lambda path: _scan(path, verify_data_crc)) if verify_data_crc else _cached_or_scanned
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    places = list(pool.map(read, files))
  counts = [len(offsets) for offsets, _ in places]
  check_fits(sum(counts), max_index_bytes, where=where)
  lengths = np.concatenate([lengths for _, lengths in places]).astype(np.int64)
  return RecordIndex(
    files=list(files),
    offsets=tf.constant(np.concatenate([offsets for offsets, _ in places]).astype(np.int64)),
    lengths=tf.constant(lengths),
    starts=tf.constant(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)),
    counts=counts,
    data_bytes=int(lengths.sum()),
  )


def _scan(path: str, verify_data_crc: bool) -> tuple[np.ndarray, np.ndarray]:
  """One native scan of `path`: (offsets, lengths)."""
  try:
    scan = native.tfrecord_scan(path, verify_data_crc=verify_data_crc)
  except tf.errors.OpError as error:
    raise UserError(f"cannot index {path}: {' '.join(error.message.split())[:300]}") from None
  if scan.corrupt_bytes and not scan.num_records:
    raise UserError(
      f"cannot index {path}: no TFRecord record in its {scan.file_size} bytes; "
      "is it GZIP-compressed (set the feeder's compression) or not TFRecord?"
    )
  return scan.offsets.astype(np.int64), scan.lengths.astype(np.int64)


def _cached_or_scanned(path: str) -> tuple[np.ndarray, np.ndarray]:
  """The file's (offsets, lengths) from its cache entry, else scanned (headers only) and cached."""
  place, stamp = cache_place(path)
  cached = _load(place, stamp)
  if cached is not None:
    return cached
  offsets, lengths = _scan(path, verify_data_crc=False)
  if not _save(place, stamp, offsets, lengths) and place != _folder_cache_place(path)[0]:
    # The data folder is read-only (or remote and refusing): use the cache folder.
    _save(*_folder_cache_place(path), offsets, lengths)
  return offsets, lengths


def cache_place(path: str) -> tuple[str, str]:
  """(cache file, stamp that must match) of `path`'s index: beside its metadata entry when fresh."""
  folder = filesystem.folder_of(path)
  name = os.path.basename(path)
  try:
    entry = metadata.read_metadata(folder).get(name)
    size = filesystem.getsize(path)
  except (UserError, OSError, tf.errors.OpError):
    entry = None
  if entry is not None and entry.file_size == size:
    stamp = f"v{_FORMAT} size={entry.file_size} md5={entry.md5_hash} records={entry.total_records}"
    return filesystem.join(filesystem.join(folder, INDEX_DIRNAME), name + ".npz"), stamp
  return _folder_cache_place(path)


def _folder_cache_place(path: str) -> tuple[str, str]:
  """(file in the cache folder, stamp) keyed by the path, its size and modification time."""
  stat = tf.io.gfile.stat(path)
  stamp = f"v{_FORMAT} path={path} size={stat.length} mtime_ns={stat.mtime_nsec}"
  key = hashlib.sha1(path.encode("utf-8"), usedforsecurity=False).hexdigest()
  return os.path.join(cache_dir(), key + ".npz"), stamp


def cache_dir() -> str:
  """`$DEEPHUB_INDEX_CACHE`, else `~/.cache/deephub/record_index` (XDG_CACHE_HOME honoured)."""
  if os.environ.get(CACHE_VARIABLE):
    return os.environ[CACHE_VARIABLE]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "deephub", "record_index")


def _load(place: str, stamp: str) -> tuple[np.ndarray, np.ndarray] | None:
  """The cached (offsets, lengths) when `place` holds them under `stamp`, else None."""
  try:
    if not filesystem.isfile(place):
      return None
    with filesystem.open_file(place, "rb") as f:
      arrays = np.load(io.BytesIO(f.read()), allow_pickle=False)
      if str(arrays["stamp"]) != stamp:
        return None
      offsets, lengths = arrays["offsets"], arrays["lengths"]
  except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
    logging.warning("deephub: ignoring the unreadable record index %s (%s); scanning again", place, error)
    return None
  if offsets.dtype != np.int64 or lengths.shape != offsets.shape:
    return None
  return offsets, lengths


def _save(place: str, stamp: str, offsets: np.ndarray, lengths: np.ndarray) -> bool:
  """Writes the cache file atomically; False when the folder cannot be written."""
  buffer = io.BytesIO()
  np.savez(buffer, stamp=np.array(stamp), offsets=offsets, lengths=lengths)
  temp = f"{place}.tmp{os.getpid()}"
  try:
    folder = filesystem.folder_of(place)
    if not filesystem.is_remote(folder):
      os.makedirs(folder, exist_ok=True)
    with filesystem.open_file(temp, "wb") as f:
      f.write(buffer.getvalue())
    filesystem.replace(temp, place)
  except (OSError, tf.errors.OpError):
    return False
  return True

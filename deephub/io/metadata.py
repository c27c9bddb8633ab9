"""`_tfrecord_metadata.json`: record counts, sizes and md5 sums of TFRecord files.

One JSON file per folder, as the Estimator-era Deephub wrote it:

  {"version": 1, "files": {"<basename>": {"total_records": N, "file_size": BYTES,
                                         "md5_hash": "<hex>"}}}

Feeders take their record counts from it, so steps per epoch are known
without reading the data, and a file whose size no longer matches its entry
is caught before training. The file's format, and reading, checking and
writing its entries, is `deephub.io.metadata_entries` (its names are
reachable here too); this module scans files to make entries and compares
entries with files. Generating reads each file once, files in
parallel. Uncompressed files go through the native scan op
(`deephub.ops.tfrecord.tfrecord_scan`: records, data CRCs and md5 in one C++
pass at disk speed); GZIP and ZLIB files, and every file when the native ops
are unavailable, through the pure-Python scan here, where the same chunks feed
the md5 and the record counter (and, for compressed files, the decompressor). Fewer than
12 bytes after the last record are not a record: like `tf.data`, the scan
counts the records before them and reports the tail as a warning.

Importing this module does not import TensorFlow, and neither do `deep utils`
commands that only read metadata. Scanning imports it (for the native op), as
do remote paths (`s3://`, `gs://`, through `tf.io.gfile`, see
`deephub.io.filesystem`).
"""

import concurrent.futures
import dataclasses
import fnmatch
import glob as local_glob
import hashlib
import logging
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence

from deephub.errors import UserError
from deephub.io import filesystem, tfrecord_format
from deephub.io.metadata_entries import (
  INDEX_DIRNAME,  # noqa: F401 - callers reach it as metadata.INDEX_DIRNAME.
  METADATA_FILENAME,  # noqa: F401 - callers reach it as metadata.METADATA_FILENAME.
  FileEntry,
  bad_entries,
  fix_command,
  impossible_count,  # noqa: F401 - callers reach it as metadata.impossible_count.
  is_metadata_path,
  metadata_path,
  read_entries,
  read_metadata,
  sniff_compression,
  write_metadata,
)
from deephub.io.tfrecord_format import FOOTER_BYTES, HEADER_BYTES, check_compression

# tf.data's compression types (`deephub.io.tfrecord_format`): GZIP is a gzip
# stream, ZLIB a zlib-wrapped deflate stream.
COMPRESSIONS = tfrecord_format.COMPRESSIONS
# zlib's `wbits` for each compressed type: 16 + 15 expects the gzip wrapper, 15 the zlib one.
_WBITS = {"GZIP": 31, "ZLIB": 15}
_CHUNK_BYTES = 1 << 20


class UnreadableFileError(Exception):
  """A file that is not a (complete) TFRecord file of the given compression."""


def scan_file(path: str, compression: str = "") -> FileEntry:
  """Counts the records and computes the md5 of `path` in one pass over its bytes.

  Args:
    path: a TFRecord file.
    compression: '', 'GZIP' or 'ZLIB' (the md5 and size are of the file as stored).

  Raises:
    UnreadableFileError: the file cannot be opened or decompressed, ends
      inside a record, or (native scan) holds a record whose CRC fails.
  """
  return _scan(path, compression).entry


@dataclasses.dataclass(frozen=True)
class _Scanned:
  entry: FileEntry
  trailing_bytes: int  # Fewer than a header's bytes after the last record (ignored).


def _scan(path: str, compression: str) -> _Scanned:
  check_compression(compression)
  if not compression and not filesystem.is_remote(path) and _direct_ops():
    return _direct_scan(path)
  if not compression and _native_ops():
    return _native_scan(path)
  return _python_scan(path, compression)


def _direct_ops() -> bool:
  """True when `deep utils` may call the native scan without importing TensorFlow."""
  from deephub.ops import direct

  return direct.available()


def _direct_scan(path: str) -> _Scanned:
  """The native scan through ctypes (`deephub.ops.direct`): same checks, no TensorFlow import."""
  from deephub.ops import direct

  try:
    scan = direct.scan(path, verify_data_crc=True, md5=True)
  except direct.ScanError as error:
    raise UnreadableFileError(" ".join(str(error).split())[:300]) from None
  if scan.corrupt_ranges:
    raise UnreadableFileError(
      f"corrupted from byte offset {scan.first_corrupt_offset}: {scan.corrupt_ranges} damaged "
      f"range(s), {scan.corrupt_bytes} bytes, {scan.records} good records"
    )
  entry = FileEntry(total_records=scan.records, file_size=scan.file_size, md5_hash=scan.md5)
  return _Scanned(entry, scan.trailing_bytes)


def _native_ops() -> bool:
  """True when the C++ scan op is loaded (imports TensorFlow; the loader warns once if not)."""
  from deephub.ops import loader

  if loader.disabled():  # Checked first: importing the wrapper imports TensorFlow.
    return False
  from deephub.ops import tfrecord as native  # Deferred: `deep utils` starts without TensorFlow.

  return native.available()


def _native_scan(path: str) -> _Scanned:
  """One C++ pass: records (length and data CRCs checked) and the md5."""
  import tensorflow as tf

  from deephub.ops import tfrecord as native

  if filesystem.is_remote(path):
    from deephub.io import remote

    remote.ensure_filesystem(path, where="path")
  try:
    scan = native.tfrecord_scan(path, verify_data_crc=True, md5=True)
  except tf.errors.OpError as error:
    raise UnreadableFileError(" ".join(error.message.split())[:300]) from None
  if len(scan.corrupt_offsets):
    raise UnreadableFileError(
      f"corrupted from byte offset {scan.corrupt_offsets[0]}: {len(scan.corrupt_offsets)} damaged "
      f"range(s), {scan.corrupt_bytes} bytes, {scan.num_records} good records"
    )
  entry = FileEntry(total_records=scan.num_records, file_size=scan.file_size, md5_hash=scan.md5)
  return _Scanned(entry, scan.trailing_bytes)


def _python_scan(path: str, compression: str) -> _Scanned:
  """The pure-Python pass: framing walked (CRCs not checked), md5 from the same chunks."""
  md5 = hashlib.md5(usedforsecurity=False)
  size = 0

  def raw_chunks() -> Iterator[bytes]:
    nonlocal size
    with filesystem.open_file(path, "rb") as f:
      while chunk := f.read(_CHUNK_BYTES):
        md5.update(chunk)
        size += len(chunk)
        yield chunk

  try:
    chunks = _inflate(raw_chunks(), compression) if compression else raw_chunks()
    records, trailing = _count_records(chunks)
  except OSError as error:
    raise UnreadableFileError(error.strerror or str(error)) from None
  except zlib.error as error:
    raise UnreadableFileError(f"not a {compression} file ({error})") from None
  entry = FileEntry(total_records=records, file_size=size, md5_hash=md5.hexdigest())
  return _Scanned(entry, trailing)


def _inflate(chunks: Iterable[bytes], compression: str) -> Iterator[bytes]:
  """Decompresses a stream of one or more concatenated GZIP or ZLIB members."""
  wbits = _WBITS[compression]
  decompressor = zlib.decompressobj(wbits=wbits)
  inside_member = False
  for chunk in chunks:
    while chunk:
      inside_member = True
      yield decompressor.decompress(chunk)
      chunk = b""
      if decompressor.eof:
        chunk, inside_member = decompressor.unused_data, False
        decompressor = zlib.decompressobj(wbits=wbits)
  if inside_member:
    raise zlib.error(f"the {compression} stream ends early (truncated file)")


def _count_records(chunks: Iterable[bytes]) -> tuple[int, int]:
  """Walks the record framing, skipping the payloads; returns (records, trailing bytes).

  Trailing bytes are a partial header after the last record, which
  `tf.data.TFRecordDataset` ignores too.
  """
  count, skip, header = 0, 0, b""
  for chunk in chunks:
    pos, end = 0, len(chunk)
    while pos < end:
      if skip:
        step = min(skip, end - pos)
        skip -= step
        pos += step
        continue
      take = HEADER_BYTES - len(header)
      header += chunk[pos : pos + take]
      pos += take
      if len(header) == HEADER_BYTES:
        (length,) = struct.unpack("<Q", header[:8])
        skip, header = length + FOOTER_BYTES, b""
        count += 1
  if skip:
    raise UnreadableFileError("ends inside a record: truncated, or not a TFRecord file of this compression")
  return count, len(header)


def list_data_files(pattern: str) -> list[str]:
  """Files matching the glob, sorted, without the metadata files themselves."""
  return sorted(
    path for path in filesystem.glob(pattern) if filesystem.isfile(path) and not is_metadata_path(path)
  )


def missing_files(pattern: str, files: Sequence[str]) -> list[tuple[str, str]]:
  """`(path, metadata file)` for each file an entry lists, matching `pattern`, that is gone.

  A deleted shard is lost data that no glob finds; its folder's metadata
  still names it. The folders looked in are those of `files` (the files the
  pattern matched) and the pattern's own folder when it has no wildcard.

  Raises:
    UserError: a folder's metadata file is not valid JSON of version 1.
  """
  remote = filesystem.is_remote(pattern)
  full_pattern = pattern if remote else os.path.abspath(pattern)
  folders = {filesystem.folder_of(path) for path in files}
  parent = full_pattern.rsplit("/", 1)[0] if remote else os.path.dirname(full_pattern)
  if not local_glob.has_magic(parent):
    folders.add(parent)
  present = set(files)
  missing = []
  for folder in sorted(folders):
    entries, bad = read_entries(folder)
    for name in sorted({*entries, *bad}):
      path = filesystem.join(folder, name)
      if path in present or not fnmatch.fnmatchcase(path, full_pattern):
        continue
      if not filesystem.isfile(path):
        missing.append((path, metadata_path(folder)))
  return missing


@dataclasses.dataclass
class GenerateReport:
  """What `generate` did: files matched, (re)scanned, kept, and unreadable ones."""

  matched: int = 0
  scanned: list[str] = dataclasses.field(default_factory=list)
  kept: list[str] = dataclasses.field(default_factory=list)
  unreadable: list[str] = dataclasses.field(default_factory=list)
  scanned_bytes: int = 0
  # Scanned files with a partial header after their last record (ignored, as TensorFlow does).
  trailing: list[str] = dataclasses.field(default_factory=list)
  # Why each unreadable file is unreadable (with the byte offset when known).
  reasons: dict[str, str] = dataclasses.field(default_factory=dict)


def generate(
  files: Sequence[str],
  *,
  compression: str = "",
  force: bool = False,
  on_file: Callable[[str, str], None] | None = None,
) -> GenerateReport:
  """Adds or refreshes the metadata entries of `files`, one JSON per folder.

  An entry is kept when its size still matches, unless `force`; an
  unreadable file is reported and skipped (its old entry is dropped). Files
  are scanned in parallel, one per CPU.

  Args:
    files: TFRecord paths (see `list_data_files`).
    compression: '', 'GZIP' or 'ZLIB'.
    force: rescan files that already have an entry of the right size.
    on_file: called as `on_file(path, outcome)` after each file, in order,
      outcome one of 'scanned', 'kept', 'unreadable: <reason>' (for progress output).

  Returns:
    What was done to which file.
  """
  report = GenerateReport(matched=len(files))
  by_folder: dict[str, list[str]] = {}
  for path in files:
    by_folder.setdefault(filesystem.folder_of(path), []).append(path)
  for folder, paths in by_folder.items():
    entries = read_metadata(folder)
    stale = [path for path in paths if force or not _fresh(entries.get(os.path.basename(path)), path)]
    results = dict(_scan_in_parallel(stale, compression))
    for path in paths:
      name = os.path.basename(path)
      result = results.get(path)
      if result is None:
        report.kept.append(path)
        outcome = "kept"
      elif isinstance(result, UnreadableFileError):
        entries.pop(name, None)
        report.unreadable.append(path)
        report.reasons[path] = str(result)
        outcome = f"unreadable: {result}"
      else:
        entries[name] = result.entry
        report.scanned.append(path)
        report.scanned_bytes += result.entry.file_size
        outcome = "scanned"
        if result.trailing_bytes:
          report.trailing.append(path)
          logging.warning(
            "%s: ignored the last %d bytes, too few for a record (tf.data ignores them too)",
            path,
            result.trailing_bytes,
          )
      if on_file:
        on_file(path, outcome)
    write_metadata(folder, entries)
  return report


def _fresh(entry: FileEntry | None, path: str) -> bool:
  return entry is not None and entry.file_size == filesystem.getsize(path)


def _scan_in_parallel(
  paths: Sequence[str], compression: str
) -> Iterator[tuple[str, "_Scanned | UnreadableFileError"]]:
  """`(path, scan or the reason it is unreadable)` for each path, in order; one thread per CPU.

  The native scan and hashlib release the GIL, so threads scan files in parallel.
  """
  if not paths:
    return
  if not compression and not (_direct_ops() and not any(map(filesystem.is_remote, paths))):
    _native_ops()  # Loads (or warns about) the library once, before the threads start.

  def scan(path: str) -> "_Scanned | UnreadableFileError":
    try:
      return _scan(path, compression)
    except UnreadableFileError as error:
      return error

  with concurrent.futures.ThreadPoolExecutor(min(len(paths), _cpus())) as pool:
    yield from zip(paths, pool.map(scan, paths), strict=True)


def _cpus() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_files(
  files: Sequence[str], *, deep: bool = False, on_file: Callable[[str, str], None] | None = None
) -> list[tuple[str, str]]:
  """Returns `(path, problem)` for each file whose entry is missing, invalid or does not match.

  Problems come in the order of `files`.

  Args:
    files: paths to check.
    deep: also read every file, files in parallel: records, data CRCs and
      md5 with the native scan (see `_deep_check`), else the md5; otherwise
      sizes only.
    on_file: called as `on_file(path, outcome)` after each file, outcome
      'ok' or 'mismatch' (for progress output).
  """
  problems = bad_entries(files)
  flagged = {path for path, _ in problems}
  report = on_file or (lambda path, outcome: None)
  for path in flagged:
    report(path, "mismatch")
  cache: dict[str, dict[str, FileEntry]] = {}
  to_read = []
  for path in files:
    if path in flagged:
      continue
    folder = filesystem.folder_of(path)
    entries = cache.setdefault(folder, read_metadata(folder))
    entry = entries.get(os.path.basename(path))
    size = filesystem.getsize(path)
    if entry is None:
      problems.append((path, f"no entry in {metadata_path(folder)}"))
    elif entry.file_size != size:
      problems.append((path, f"size {size} bytes, metadata says {entry.file_size}"))
    elif deep:
      to_read.append((path, entry))
      continue
    report(path, "mismatch" if problems and problems[-1][0] == path else "ok")
  with concurrent.futures.ThreadPoolExecutor(max(1, min(len(to_read), _cpus()))) as pool:
    found = pool.map(_deep_check, to_read)
    for (path, _), problem in zip(to_read, found, strict=True):
      if problem:
        problems.append((path, problem))
      report(path, "mismatch" if problem else "ok")
  order = {path: i for i, path in enumerate(files)}
  return sorted(problems, key=lambda problem: order[problem[0]])


def _deep_check(path_and_entry: tuple[str, FileEntry]) -> str | None:
  """What a full read finds wrong with a file whose size matches its entry, or None.

  An uncompressed file gets one native scan when the ops are at hand without
  importing TensorFlow for it (`deep utils` through ctypes, or a process that
  has TensorFlow already): records, data CRCs and md5 against the entry.
  Otherwise, and for GZIP and ZLIB files, the md5 alone: hashlib releases the GIL, so
  threads hash files at disk speed, where the pure-Python record walk would
  not keep up.
  """
  path, entry = path_and_entry
  scan = None
  if not sniff_compression(path):
    if not filesystem.is_remote(path) and _direct_ops():
      scan = _direct_scan
    elif "tensorflow" in sys.modules and _native_ops():
      scan = _native_scan
  if scan is None:
    return (
      None if _md5(path) == entry.md5_hash else "md5 differs from the metadata (same size, changed content)"
    )
  try:
    scanned = scan(path).entry
  except UnreadableFileError as error:
    return f"unreadable: {error}"
  if scanned.md5_hash != entry.md5_hash:
    return "md5 differs from the metadata (same size, changed content)"
  if scanned.total_records != entry.total_records:
    return f"{scanned.total_records} records, metadata says {entry.total_records}"
  return None


def _md5(path: str) -> str:
  md5 = hashlib.md5(usedforsecurity=False)
  with filesystem.open_file(path, "rb") as f:
    while chunk := f.read(_CHUNK_BYTES):
      md5.update(chunk)
  return md5.hexdigest()


def _records_or_error(path: str, records: int, corrupt_bytes: int) -> int:
  """Good records are counted past damage; a file with none at all is not uncompressed TFRecord."""
  if corrupt_bytes and not records:
    raise UserError(
      f"cannot read {path} as an uncompressed TFRecord file: no record in its {corrupt_bytes} bytes; "
      "if it is compressed, write its metadata with "
      f"{fix_command(filesystem.folder_of(path), sniff_compression(path) or 'GZIP')}"
    )
  return records


def count_records(files: Sequence[str], *, compression: str = "") -> list[int]:
  """Each file's record count by reading it, files in parallel (for files without metadata).

  Uncompressed files go through the native scan reading headers only (no
  data CRC, no md5); damaged ranges are not counted. GZIP and ZLIB files, or all
  files without the native ops, through the pure-Python framing walk.

  Raises:
    UserError: a file cannot be read as TFRecord of this compression.
  """
  local = not any(map(filesystem.is_remote, files))
  if not compression and files and local and _direct_ops():
    from deephub.ops import direct

    def count_directly(path: str) -> int:
      try:
        scan = direct.scan(path, verify_data_crc=False)
      except direct.ScanError as error:
        raise UserError(f"cannot read {path}: {' '.join(str(error).split())[:300]}") from None
      return _records_or_error(path, scan.records, scan.corrupt_bytes)

    with concurrent.futures.ThreadPoolExecutor(min(len(files), _cpus())) as pool:
      return list(pool.map(count_directly, files))
  if not compression and files and _native_ops():
    import tensorflow as tf

    from deephub.ops import tfrecord as native

    def count(path: str) -> int:
      if filesystem.is_remote(path):
        from deephub.io import remote

        remote.ensure_filesystem(path, where="path")
      try:
        scan = native.tfrecord_scan(path, verify_data_crc=False)
      except tf.errors.OpError as error:
        raise UserError(f"cannot read {path}: {' '.join(error.message.split())[:300]}") from None
      return _records_or_error(path, scan.num_records, scan.corrupt_bytes)

    with concurrent.futures.ThreadPoolExecutor(min(len(files), _cpus())) as pool:
      return list(pool.map(count, files))
  counts = []
  for path, result in _scan_in_parallel(files, compression):
    if isinstance(result, UnreadableFileError):
      raise UserError(f"cannot read {path} as a TFRecord file (compression {compression!r}): {result}")
    counts.append(result.entry.total_records)
  return counts


def record_counts(files: Sequence[str], *, compression: str = "", auto_generate: bool = False) -> list[int]:
  """Returns each file's record count from its folder's metadata, without reading the data.

  Args:
    files: the feeder's files.
    compression: the feeder's compression, for generating and for the fix hint.
    auto_generate: scan files whose entry is missing or stale and write it,
      instead of failing.

  Raises:
    UserError: a file's entry is missing, holds an invalid or impossible
      value, or its size changed (the message names the file, the metadata
      key and the command that fixes it), or a file is unreadable.
  """
  problems = check_files(files)
  if problems and auto_generate:
    report = generate([path for path, _ in problems], compression=compression, force=True)
    if report.unreadable:
      raise UserError(
        f"cannot read {report.unreadable[0]} as a TFRecord file (compression {compression!r}): it is "
        f"truncated, corrupted or not TFRecord ({report.reasons[report.unreadable[0]]}); list bad files "
        "with `deep utils validate PATTERN "
        "--deep-check`, or set the feeder's skip_corrupt_records: True"
      )
    problems = check_files(files)
  if problems:
    path, problem = problems[0]
    bad_value = bool(bad_entries([path]))
    what = "bad TFRecord metadata for" if bad_value else "TFRecord metadata does not cover"
    raise UserError(
      f"{what} {path}: {problem}"
      + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
      + f"; run {fix_command(os.path.dirname(path), compression, force=bad_value)} "
      "or set the feeder's auto_generate_meta: True"
    )
  counts = []
  cache: dict[str, dict[str, FileEntry]] = {}
  for path in files:
    folder = filesystem.folder_of(path)
    counts.append(cache.setdefault(folder, read_metadata(folder))[os.path.basename(path)].total_records)
  return counts

"""`_tfrecord_metadata.json` itself: its entries, how they are read, checked and written.

One JSON file per folder, as the Estimator-era Deephub wrote it:

  {"version": 1, "files": {"<basename>": {"total_records": N, "file_size": BYTES,
                                         "md5_hash": "<hex>"}}}

An entry is valid when it has exactly these keys, holds values a scan
writes, and a count its file_size can hold (`impossible_count`). Scanning
files to fill entries, and comparing entries with files, is
`deephub.io.metadata`. Importing this module does not import TensorFlow.
"""

import dataclasses
import json
import os
import zlib
from collections.abc import Sequence
from typing import Any, NoReturn

from deephub.errors import UserError
from deephub.io import filesystem
from deephub.io.tfrecord_format import RECORD_OVERHEAD_BYTES

METADATA_FILENAME = "_tfrecord_metadata.json"
# Beside it, the record indexes of `shuffle: 'global'` (deephub.io.record_index).
INDEX_DIRNAME = "_tfrecord_index"
VERSION = 1
# Every record takes at least its framing, so a file of N bytes holds at most
# N / 16 records...
_MIN_RECORD_BYTES = RECORD_OVERHEAD_BYTES
# ...and a GZIP or ZLIB file at most 1032 times that: deflate's largest expansion.
_GZIP_MAX_EXPANSION = 1032
_GZIP_MAGIC = b"\x1f\x8b"
# Bytes read to tell a ZLIB file from an uncompressed one.
_SNIFF_BYTES = 4096
# File systems report sizes as int64; a larger file_size is no file's.
_MAX_FILE_BYTES = 2**63 - 1
_ENTRY_KEYS = ("total_records", "file_size", "md5_hash")


@dataclasses.dataclass(frozen=True)
class FileEntry:
  """One file's entry in the metadata JSON."""

  total_records: int
  file_size: int
  md5_hash: str


def metadata_path(folder: str) -> str:
  return filesystem.join(folder, METADATA_FILENAME)


def read_metadata(folder: str) -> dict[str, FileEntry]:
  """Returns the folder's valid entries by basename; {} when it has no metadata file.

  Invalid entries are left out (`read_entries` reports them), so `generate`
  rescans their files instead of keeping them.

  Raises:
    UserError: the metadata file is not valid JSON of version 1.
  """
  return read_entries(folder)[0]


def read_entries(folder: str) -> tuple[dict[str, FileEntry], dict[str, str]]:
  """Returns the folder's valid entries, and the problem of each invalid one, by basename.

  An entry is invalid when it lacks a key, has an unknown one, holds a value
  no scan writes (a count that is a string, a float, a bool, NaN or
  negative), or a count its file_size cannot hold (`impossible_count`);
  `generate` rescans such entries and the feeders refuse them.

  Raises:
    UserError: the metadata file is not JSON of version 1 with a `files`
      object (the message names the file and the fix).
  """
  path = metadata_path(folder)
  if not filesystem.isfile(path):
    return {}, {}
  try:
    with filesystem.open_file(path, "r") as f:
      data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
      raise ValueError("expected an object with 'version' and a 'files' object")
    if data.get("version") != VERSION:
      raise ValueError(f"version {_shown(data.get('version'))}, expected {VERSION}")
  except RecursionError:
    # json nests Python calls per level: a deeply nested file is no metadata.
    raise UserError(
      f"{path} is not valid TFRecord metadata (nested too deeply); delete it and run {fix_command(folder)}"
    ) from None
  except ValueError as error:  # Also JSONDecodeError and UnicodeDecodeError.
    raise UserError(
      f"{path} is not valid TFRecord metadata ({error}); delete it and run {fix_command(folder)}"
    ) from None
  entries, bad = {}, {}
  for name, value in data["files"].items():
    try:
      entry = _parse_entry(value)
    except ValueError as error:
      bad[name] = f"in {path}, files.{name}{error}"
      continue
    impossible = _count_problem(folder, name, entry)
    if impossible:
      bad[name] = f"in {path}, files.{name}.total_records {impossible}"
    else:
      entries[name] = entry
  return entries, bad


def _parse_entry(value: Any) -> FileEntry:
  """One JSON entry as a FileEntry.

  Raises:
    ValueError: '.key is ..., not ...' for the first bad key (or ' is ...'
      for an entry that is no object).
  """
  if not isinstance(value, dict):
    _refuse("", value, f"an object with keys {', '.join(_ENTRY_KEYS)}")
  for key in _ENTRY_KEYS:
    if key not in value:
      raise ValueError(f" has no key {key!r}")
  for key in value:
    if key not in _ENTRY_KEYS:
      raise ValueError(f" has an unknown key {_shown(key)}")
  for key in ("total_records", "file_size"):
    # bool is an int subclass, and floats (2.5, 1e15, NaN) are no counts.
    if type(value[key]) is not int or not 0 <= value[key] <= _MAX_FILE_BYTES:
      _refuse(f".{key}", value[key], "a non-negative integer (below 2**63)")
  md5 = value["md5_hash"]
  if not (isinstance(md5, str) and len(md5) == 32 and all(c in "0123456789abcdef" for c in md5)):
    _refuse(".md5_hash", md5, "32 lowercase hex digits")
  return FileEntry(**value)


def _refuse(key: str, value: Any, expected: str) -> NoReturn:
  """Raises the ValueError of `_parse_entry` for a bad value."""
  kind = "" if type(value) is int else f" ({type(value).__name__})"
  raise ValueError(f"{key} is {_shown(value)}{kind}, not {expected}")


def _shown(value: Any, limit: int = 40) -> str:
  """A short repr for messages: a value from a file may be huge."""
  if type(value) is int and abs(value) >= 10**limit:
    return f"a {len(str(abs(value)))}-digit number"
  text = repr(value)
  return text if len(text) <= limit else text[: limit - 3] + "..."


def sniff_compression(path: str) -> str:
  """'GZIP' or 'ZLIB' from the file's first bytes, else ''.

  A zlib stream has no magic: its 2-byte header is a checksum a record length
  can pass, so the first bytes must also inflate. An uncompressed record's
  length is followed by zero bytes, which no deflate stream starts with
  (a stored block whose length check fails).
  """
  with filesystem.open_file(path, "rb") as f:
    head = f.read(_SNIFF_BYTES)
  if head[:2] == _GZIP_MAGIC:
    return "GZIP"
  if (
    len(head) >= 2
    and head[0] & 0x0F == 8
    and not head[1] & 0x20
    and int.from_bytes(head[:2], "big") % 31 == 0
  ):
    try:
      zlib.decompressobj(wbits=15).decompress(head)
      return "ZLIB"
    except zlib.error:
      pass
  return ""


def _count_problem(folder: str, name: str, entry: FileEntry) -> str:
  """`impossible_count` for the file's own compression, read from its first bytes only when it matters.

  A count that fits an uncompressed file fits a compressed one too, so most
  entries need no file opened.
  """
  if not impossible_count(entry, ""):
    return ""
  try:
    compression = sniff_compression(filesystem.join(folder, name))
  except OSError:
    compression = "GZIP"  # No file to read: hold the entry to the looser (compressed) bound.
  return impossible_count(entry, compression)


def impossible_count(entry: FileEntry, compression: str) -> str:
  """Why `entry.total_records` cannot be the count of its file, or '' when it can be.

  A record takes at least 16 bytes of framing, so a count above
  `file_size / 16` (x1032 for GZIP and ZLIB, deflate's largest expansion) is a
  made-up number, and a non-empty uncompressed file holds a record.
  """
  limit = entry.file_size // _MIN_RECORD_BYTES
  if compression:
    limit = entry.file_size * _GZIP_MAX_EXPANSION // _MIN_RECORD_BYTES
  elif entry.file_size and not entry.total_records:
    return f"is 0, but a non-empty uncompressed file of {entry.file_size} bytes holds a record"
  if entry.total_records > limit:
    return (
      f"is {_shown(entry.total_records)}, more than a{' ' + compression if compression else ''} file of "
      f"{entry.file_size} bytes can hold ({limit}; a record takes {_MIN_RECORD_BYTES} bytes or more)"
    )
  return ""


def bad_entries(files: Sequence[str]) -> list[tuple[str, str]]:
  """Returns `(path, problem)` for each file whose entry holds an invalid or impossible value.

  The problem names the metadata file and key (see `read_entries`).
  """
  cache: dict[str, dict[str, str]] = {}
  problems = []
  for path in files:
    folder = filesystem.folder_of(path)
    bad = cache.setdefault(folder, read_entries(folder)[1])
    if os.path.basename(path) in bad:
      problems.append((path, bad[os.path.basename(path)]))
  return problems


def write_metadata(folder: str, entries: dict[str, FileEntry]) -> None:
  """Writes the folder's metadata JSON atomically (a reader never sees half a file)."""
  data = {"version": VERSION, "files": {name: dataclasses.asdict(entries[name]) for name in sorted(entries)}}
  temp = metadata_path(folder) + ".tmp"
  with filesystem.open_file(temp, "w") as f:
    f.write(json.dumps(data, indent=4) + "\n")
  filesystem.replace(temp, metadata_path(folder))


def fix_command(folder: str, compression: str = "", *, force: bool = False) -> str:
  """The `deep` command that (re)generates the metadata of `folder` (rescanning all with `force`)."""
  option = f" --compression_type {compression}" if compression else ""
  option += " --force" if force else ""
  return f"`deep utils generate-metadata '{filesystem.join(folder, '*')}'{option}`"


def is_metadata_path(path: str) -> bool:
  """Whether a glob's match is metadata, not data: the JSON, its temp file, the record-index folder."""
  name = path.rstrip("/").rsplit("/", 1)[-1]
  return name in (METADATA_FILENAME, METADATA_FILENAME + ".tmp", INDEX_DIRNAME)

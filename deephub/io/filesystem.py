"""File access for code that must start without TensorFlow (`deep utils`).

Local paths use the standard library. A path with a scheme (`s3://`,
`gs://`, ...) goes through `tf.io.gfile`, importing TensorFlow (and, for
schemes core TensorFlow lacks, tensorflow-io) only then.
"""

import fnmatch
import glob as local_glob
import os
from typing import IO

from deephub.io.tfrecord_format import is_remote

# A pattern component that matches any number of folders (pathlib's and the old feeders' `**`).
RECURSIVE = "**"


def _gfile(path: str):
  from deephub.io import remote

  remote.ensure_filesystem(path, where="path")
  import tensorflow as tf

  return tf.io.gfile


def open_file(path: str, mode: str) -> IO:
  """Opens for reading or writing; text modes are UTF-8."""
  if is_remote(path):
    return _gfile(path).GFile(path, mode)
  return open(path, mode) if "b" in mode else open(path, mode, encoding="utf-8")


def isfile(path: str) -> bool:
  if is_remote(path):
    gfile = _gfile(path)
    return gfile.exists(path) and not gfile.isdir(path)
  return os.path.isfile(path)


def getsize(path: str) -> int:
  return _gfile(path).stat(path).length if is_remote(path) else os.path.getsize(path)


def glob(pattern: str) -> list[str]:
  """Paths matching `pattern`; a `**` component matches zero or more folders (old feeders' globs)."""
  if is_remote(pattern):
    return _recursive_remote_glob(pattern) if is_recursive(pattern) else _gfile(pattern).glob(pattern)
  return local_glob.glob(pattern, recursive=True)


def is_recursive(pattern: str) -> bool:
  return RECURSIVE in pattern.split("/")


def _recursive_remote_glob(pattern: str) -> list[str]:
  """`**` for gs://, s3://...: tf.io.gfile.glob has no recursive form, so walk from the fixed prefix."""
  gfile = _gfile(pattern)
  parts = pattern.split("/")
  fixed = next(i for i, part in enumerate(parts) if local_glob.has_magic(part))
  base = "/".join(parts[:fixed])
  found = []
  for folder, _, names in gfile.walk(base):
    for name in names:
      path = f"{folder.rstrip('/')}/{name}"
      if matches(path[len(base) + 1 :].split("/"), parts[fixed:]):
        found.append(path)
  return found


def matches(parts: list[str], patterns: list[str]) -> bool:
  """Whether path components `parts` match glob components `patterns` (`**` spans any number of folders)."""
  if not patterns:
    return not parts
  if patterns[0] == RECURSIVE:
    return any(matches(parts[i:], patterns[1:]) for i in range(len(parts) + 1))
  return bool(parts) and fnmatch.fnmatchcase(parts[0], patterns[0]) and matches(parts[1:], patterns[1:])


def replace(source: str, target: str) -> None:
  """Moves `source` over `target` (atomic on local disks; S3 has no rename, so a copy there)."""
  if is_remote(target):
    _gfile(target).rename(source, target, overwrite=True)
  else:
    os.replace(source, target)


def folder_of(path: str) -> str:
  """The absolute folder holding `path`."""
  return path.rsplit("/", 1)[0] if is_remote(path) else os.path.dirname(os.path.abspath(path))


def join(folder: str, name: str) -> str:
  return f"{folder.rstrip('/')}/{name}" if is_remote(folder) else os.path.join(folder, name)

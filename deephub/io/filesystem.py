"""File access for code that must start without TensorFlow (`deep utils`).

Local paths use the standard library. A path with a scheme (`s3://`,
`gs://`, ...) goes through `tf.io.gfile`, importing TensorFlow (and, for
schemes core TensorFlow lacks, tensorflow-io) only then.
"""

import glob as local_glob
import os
from typing import IO

from deephub.io.tfrecord_format import is_remote


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
  return _gfile(pattern).glob(pattern) if is_remote(pattern) else local_glob.glob(pattern)


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

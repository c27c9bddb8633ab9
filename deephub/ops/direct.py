"""The native scan from plain Python (ctypes), for `deep utils` processes without TensorFlow.

`import tensorflow` costs 3-5 s of CPU, more than scanning a gigabyte, and
`deep utils generate-metadata` needs none of it: the scan needs only
TensorFlow's C++ framework library (for `Env`, the file systems). So the
metadata commands load `libtensorflow_framework.so.2` and deephub's library
with ctypes and call `DeephubTfrecordScanSummary`, an `extern "C"` entry
point beside the ops in `tfrecord_ops.cc`. ctypes releases the GIL during
the call, so threads scan files in parallel.

Only a library already built for the installed TensorFlow is used (found as
the loader finds it, with the version read from the package metadata rather
than by importing TensorFlow); otherwise, or once TensorFlow's Python is
imported, callers take the TensorFlow path (`deephub.ops.tfrecord`), which
can build one. Loading the library this way registers its ops without
TensorFlow's Python seeing them, so a process that used this path cannot
later load the ops as a TensorFlow module: `loader` then reports them
unavailable. Only the `deep utils` commands opt in (`enable()`).
"""

import contextlib
import ctypes
import dataclasses
import glob
import importlib.metadata
import importlib.util
import os
import sys
import threading

from deephub import console
from deephub.ops import build, loader

_lock = threading.Lock()
_enabled = False
_function = None
_tried = False


@dataclasses.dataclass(frozen=True)
class ScanSummary:
  """One file's scan, summarised (see `deephub.ops.tfrecord.TFRecordScan`)."""

  records: int
  corrupt_ranges: int
  corrupt_bytes: int
  first_corrupt_offset: int  # -1 when there is no damage.
  trailing_bytes: int
  file_size: int
  md5: str


class ScanError(OSError):
  """The file could not be opened or read (the message names it)."""


def enable() -> None:
  """Lets this process scan without importing TensorFlow (the `deep utils` commands call it)."""
  global _enabled
  _enabled = True


def available() -> bool:
  """True when enabled, TensorFlow's Python is not imported, and a matching library loads."""
  global _function, _tried
  with _lock:
    if not _tried and _enabled and "tensorflow" not in sys.modules and not loader.disabled():
      _tried = True
      _function = _load()
    return _function is not None


def scan(path: str, *, verify_data_crc: bool = True, md5: bool = False) -> ScanSummary:
  """Scans a local uncompressed TFRecord file; see `deephub.ops.tfrecord.tfrecord_scan`.

  Raises:
    ScanError: the file cannot be opened or read.
  """
  out = (ctypes.c_int64 * 6)()
  digest = ctypes.create_string_buffer(33)
  error = ctypes.create_string_buffer(1024)
  if _function(path.encode(), int(verify_data_crc), int(md5), out, digest, error, len(error)):
    raise ScanError(error.value.decode("utf-8", "replace"))
  return ScanSummary(*out, md5=digest.value.decode("ascii"))


def _tensorflow_version_and_dir() -> tuple[str, str] | None:
  spec = importlib.util.find_spec("tensorflow")
  if spec is None or not spec.submodule_search_locations:
    return None
  for name in ("tensorflow", "tensorflow-cpu", "tensorflow-intel"):
    try:
      return importlib.metadata.version(name), list(spec.submodule_search_locations)[0]
    except importlib.metadata.PackageNotFoundError:
      continue
  return None


def _load():
  """The scan function of a library built for the installed TensorFlow, else None."""
  found = _tensorflow_version_and_dir()
  if found is None:
    return None
  version, tf_dir = found
  wanted = build.build_info(version)
  candidates = [
    *sorted(glob.glob(os.path.join(build.OPS_DIR, "_tfrecord_ops*.so"))),
    loader.cached_library(wanted),
  ]
  library = next((path for path in candidates if build.read_build_info(path) == wanted), None)
  if library is None:
    return None
  # Loading TensorFlow's framework library prints its no-GPU start-up lines,
  # as the Python import does: hidden the same way (see deephub.console).
  quiet = contextlib.nullcontext() if console.verbose() else console.filtered_stderr()
  try:
    with quiet:
      ctypes.CDLL(os.path.join(tf_dir, "libtensorflow_framework.so.2"), mode=ctypes.RTLD_GLOBAL)
      function = ctypes.CDLL(library).DeephubTfrecordScanSummary
  except (OSError, AttributeError):
    return None
  function.restype = ctypes.c_int
  function.argtypes = [
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.POINTER(ctypes.c_int64),
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_size_t,
  ]
  loader.loaded_without_tensorflow(library)
  return function

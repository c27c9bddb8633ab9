"""Finds, (re)builds and loads the native op library, or says once why it cannot.

Where the library comes from, in order:

1. the one `pip install` built into the package (`deephub/ops/_tfrecord_ops*.so`);
2. the per-user cache, `$DEEPHUB_OPS_CACHE` or `~/.cache/deephub/ops/<tf version>-<source hash>/`.

A library is used only when the build info it carries (read from the file,
without loading it) names the TensorFlow imported now and the current
sources: a library built for another TensorFlow may not load at all, or load
and crash later. When neither matches (TensorFlow was upgraded, the io
environment's 2.17 met a wheel built with 2.21, or an editable install never
built one), it is compiled once into the cache (seconds), under a file lock
so that concurrent processes build it only once.

Without a compiler, or when the build or load fails, one warning line says
what is lost and how to get it, and callers use the pure-TensorFlow paths.
`DEEPHUB_NATIVE_OPS=0` turns the ops off (the tests run the fallback paths
that way).
"""

import contextlib
import dataclasses
import fcntl
import glob
import logging
import os
import threading

from deephub import console
from deephub.ops import build

DISABLE_VARIABLE = "DEEPHUB_NATIVE_OPS"
CACHE_VARIABLE = "DEEPHUB_OPS_CACHE"
_LIBRARY_NAME = "_tfrecord_ops"
# A failed build leaves this file in its cache folder, so later processes do
# not spend the compile time again; deleting the folder retries.
_FAILED_NAME = "BUILD_FAILED"


@dataclasses.dataclass(frozen=True)
class Status:
  """Whether the native ops are loaded, from where, for which TensorFlow, or why not."""

  loaded: bool
  path: str = ""
  build_info: str = ""
  reason: str = ""

  def describe(self) -> str:
    """One line for `deep --version` and logs."""
    if self.loaded:
      return f"native TFRecord ops: loaded from {self.path} ({self.build_info})"
    return f"native TFRecord ops: not loaded ({self.reason}); using the pure-TensorFlow paths"


_lock = threading.Lock()
_library = None
_status: Status | None = None
_direct_path: str | None = None


def load():
  """The loaded op module, or None when the native ops are unavailable (warned once)."""
  global _library, _status
  with _lock:
    if _status is None:
      _library, _status = _load()
      if not _status.loaded and not disabled() and _direct_path is None:
        logging.warning(
          "deephub: %s. Lost: corrupt TFRecord records cost the rest of their file, metadata "
          "scans are slower. To get them: install a C++ compiler (apt-get install g++) and rerun.",
          _status.describe(),
        )
    return _library


def status() -> Status:
  """Loads (or fails to) if not tried yet, and says what happened."""
  load()
  return _status


def reset() -> None:
  """Forgets the last attempt, so the next `load()` honours a changed DEEPHUB_NATIVE_OPS (tests)."""
  global _library, _status
  with _lock:
    _library, _status = None, None


def loaded_without_tensorflow(path: str) -> None:
  """Records that `deephub.ops.direct` loaded `path` through ctypes in this process.

  Its ops registered then, unseen by TensorFlow's Python, so loading them as a
  TensorFlow module would find none: `load()` reports them unavailable instead.
  """
  global _direct_path
  _direct_path = path


def cached_library(wanted: str) -> str:
  """Where the cache keeps the library with build info `wanted`."""
  folder = wanted.replace("tf=", "").replace(";src=", "-")
  return os.path.join(cache_dir(), folder, _LIBRARY_NAME + ".so")


def disabled() -> bool:
  return os.environ.get(DISABLE_VARIABLE, "1").strip().lower() in ("0", "false", "no", "off")


def cache_dir() -> str:
  """The per-user folder where libraries for other TensorFlow versions are built."""
  if os.environ.get(CACHE_VARIABLE):
    return os.environ[CACHE_VARIABLE]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "deephub", "ops")


def _load():
  if disabled():
    return None, Status(False, reason=f"turned off by {DISABLE_VARIABLE}=0")
  if _direct_path is not None:
    return None, Status(
      False, reason=f"{_direct_path} was loaded without TensorFlow in this process (deep utils)"
    )
  import tensorflow as tf

  wanted = build.build_info(tf.__version__)
  packaged = sorted(glob.glob(os.path.join(build.OPS_DIR, _LIBRARY_NAME + "*.so")))
  cached = cached_library(wanted)
  folder = os.path.dirname(cached)
  try:
    path = next((p for p in [*packaged, cached] if build.read_build_info(p) == wanted), None)
    if path is None:
      path = _build_into(folder, cached, wanted)
    # The library carries its own copy of absl, which prints its start-up
    # warning on load: hidden like TensorFlow's own (see deephub.console).
    with contextlib.nullcontext() if console.verbose() else console.filtered_stderr():
      library = tf.load_op_library(path)
    return library, Status(True, path=path, build_info=wanted)
  except (build.BuildError, OSError, tf.errors.OpError) as error:
    return None, Status(False, reason=" ".join(str(error).split())[:400])


def _build_into(folder: str, library: str, wanted: str) -> str:
  """Compiles the library into the cache unless another process did (or failed) meanwhile."""
  os.makedirs(folder, exist_ok=True)
  failed = os.path.join(folder, _FAILED_NAME)
  with open(os.path.join(folder, "lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # Held until the with block closes the file.
    if build.read_build_info(library) == wanted:
      return library
    if os.path.exists(failed):
      with open(failed, encoding="utf-8") as f:
        raise build.BuildError(f"{f.read().strip()} (an earlier build; delete {folder} to retry)")
    logging.info("deephub: building the native TFRecord ops for %s into %s", wanted, folder)
    try:
      build.compile_library(library)
    except build.BuildError as error:
      if build.compiler() is not None:  # A missing compiler may be installed later: no marker.
        with open(failed, "w", encoding="utf-8") as f:
          f.write(str(error))
      raise
  return library

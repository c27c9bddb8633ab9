"""Failed writes the user must fix (disk full, read-only or misplaced model_dir) as one-line errors.

A write fails for a reason in the destination, not in deephub: the disk or
quota is full, the file system is read-only, permissions forbid it, or a
path component is a file. Python reports these as `OSError` with an errno;
TensorFlow's file system layer as an `OpError` whose message carries the C
library's text for the errno (`.../config.json; Read-only file system`) or
its own "is not a directory". Both become a `UserError` naming the path and
the last good checkpoint, so nobody reads a traceback for a full disk.

This module imports TensorFlow only once an error has to be examined.
"""

import errno
import os
import re

from deephub.errors import UserError

# errno -> (what went wrong, what to do); each is a property of the destination.
_FULL = "free space there"
_READ_ONLY_FIX = "mount it writable or set model.model_dir to a writable folder"
_CAUSES = {
  errno.ENOSPC: ("no space left on the device", _FULL),
  errno.EDQUOT: ("the disk quota is exceeded", _FULL),
  errno.EROFS: ("the file system is read-only", _READ_ONLY_FIX),
  errno.EACCES: ("permission denied", "fix its permissions (model.model_dir must be writable)"),
  errno.EPERM: ("permission denied", "fix its permissions (model.model_dir must be writable)"),
  errno.ENOTDIR: ("it or a folder above it is a file", "set model.model_dir to a folder"),
}
# TensorFlow's own wording when a folder to create is a file.
_TF_NOT_A_DIRECTORY = "is not a directory"


def cause(error: BaseException) -> tuple[str, str] | None:
  """(what went wrong, what to do) when the destination made a write fail, else None."""
  if isinstance(error, OSError):
    return _CAUSES.get(error.errno)
  if type(error).__module__.startswith("tensorflow"):
    import tensorflow as tf  # Already loaded: the error came from it.

    if isinstance(error, tf.errors.OpError):
      text = error.message
      for code, told in _CAUSES.items():
        if os.strerror(code) in text:
          return told
      if _TF_NOT_A_DIRECTORY in text:
        return _CAUSES[errno.ENOTDIR]
  return None


def failed_path(error: BaseException) -> str:
  """The path a failed write names: the OSError's file name, else TensorFlow's message up to ';'."""
  if isinstance(error, OSError) and error.filename:
    return str(error.filename)
  text = getattr(error, "message", None) or str(error)
  text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text.strip()).splitlines()[0]
  return re.sub(r"( is not a directory)?(;.*)?$", "", text).strip()


def last_checkpoint_note(model_dir: str, step: int | None = None) -> str:
  """'the last good checkpoint is step N (PATH)', from `step` or model_dir's state file."""
  if step is None:
    import tensorflow as tf  # Deferred: callers reach here only after TensorFlow ran.

    try:
      latest = tf.train.latest_checkpoint(model_dir)
    except (tf.errors.OpError, ValueError, UnicodeDecodeError):  # A damaged state file says nothing.
      latest = None
    if latest is None:
      return f"{model_dir} holds no checkpoint yet"
    return f"the last good checkpoint is {latest}"
  return f"the last good checkpoint is step {step} ({os.path.join(model_dir, f'model.ckpt-{step}')})"


def explain(
  error: BaseException, *, model_dir: str, step: int | None = None, path: str = "", writing: bool = True
) -> UserError | None:
  """A one-line UserError for a write (or file access) that failed in the destination, else None.

  Args:
    error: the exception raised.
    model_dir: the run's model_dir, for the last good checkpoint.
    step: the last good checkpoint step when the caller knows it; else the state file tells.
    path: the path being written, when the caller knows it better than the error does.
    writing: the caller knows the failure was a write (else: "cannot use PATH").
  """
  found = cause(error)
  if found is None:
    return None
  reason, fix = found
  # Only a write fills a disk or meets a read-only file system.
  writing = writing or fix == _FULL or reason == _CAUSES[errno.EROFS][0]
  return UserError(
    f"cannot {'write' if writing else 'use'} {path or failed_path(error)}: {reason}; "
    f"{last_checkpoint_note(model_dir, step)}; {fix}, then rerun the same command"
  )

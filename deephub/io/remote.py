"""Filesystems that core TensorFlow lacks (s3://, hdfs://, az://, http(s)://), loaded on demand.

Core TensorFlow registers only local paths, `file://`, `ram://` and `gs://`;
tensorflow-io registers the others as soon as it is imported. Importing it
costs seconds and works only on the TensorFlow it was built for, so deephub
imports it only when a path has a scheme that core TensorFlow lacks or a
feeder needs its ops, and says exactly what to install when it cannot.

Entry points exit through `deephub.clean_exit`, because a process that used
tensorflow-io's S3 client can abort during interpreter teardown.
"""

import warnings
from collections.abc import Mapping
from types import ModuleType

from deephub.errors import UserError
from deephub.io.tfrecord_format import scheme

# Schemes tensorflow-io 0.37.1 registers with tf.io.gfile when imported.
TFIO_SCHEMES = ("s3", "hdfs", "viewfs", "har", "az", "oss", "http", "https")
# The only TensorFlow minor whose ABI tensorflow-io 0.37.1's libraries match.
TFIO_TENSORFLOW = "2.17"
INSTALL_COMMAND = "python -m pip install 'tensorflow>=2.17,<2.18' 'tensorflow-io==0.37.1' 'numpy<2'"


def ensure_filesystem(path: str, *, where: str) -> None:
  """Makes `path` readable and writable through `tf.io.gfile`, loading tensorflow-io if needed.

  Args:
    path: a file, folder or glob, local or `scheme://...`.
    where: the config key or file that holds the path, for error messages.

  Raises:
    UserError: the scheme is unknown, or tensorflow-io is needed but is
      missing or cannot load on the installed TensorFlow.
  """
  import tensorflow as tf  # Deferred: config handling must not load TensorFlow.

  name = scheme(path)
  if name in tf.io.gfile.get_registered_schemes():
    return
  if name not in TFIO_SCHEMES:
    raise UserError(
      f"{where} {path!r} has scheme {name}://, which no filesystem provides; use a local path, gs:// "
      f"or one of {', '.join(s + '://' for s in TFIO_SCHEMES)}"
    )
  load_tensorflow_io(needed_for=f"{where} {path!r}")
  if name not in tf.io.gfile.get_registered_schemes():
    raise UserError(
      f"{where} {path!r}: tensorflow-io loaded but registered no {name}:// filesystem; "
      f"reinstall it: {INSTALL_COMMAND}"
    )


def ensure_filesystems(paths: Mapping[str, str]) -> None:
  """`ensure_filesystem` for each non-empty `{config key: path}`."""
  for where, path in paths.items():
    if path:
      ensure_filesystem(path, where=where)


def load_tensorflow_io(*, needed_for: str) -> ModuleType:
  """Imports tensorflow-io and checks that its compiled ops and filesystems loaded.

  On a TensorFlow it was not built for, `import tensorflow_io` still
  succeeds: it only warns that its filesystem plugin has undefined symbols,
  and its ops library fails later, at first use. This forces both now, where
  the failure still has a clear message.

  Args:
    needed_for: what needs it (a config key and value), for error messages.

  Returns:
    The `tensorflow_io` module.

  Raises:
    UserError: tensorflow-io is not installed or does not match TensorFlow.
  """
  import tensorflow as tf

  try:
    with warnings.catch_warnings():
      # Its load failures arrive as warnings; the UserError below replaces them.
      warnings.simplefilter("ignore")
      import tensorflow_io
      from tensorflow_io.python.ops import core_ops

      # A LazyLoader: the first attribute access loads libtensorflow_io.so.
      core_ops.io_parquet_readable_info  # noqa: B018
  except ModuleNotFoundError as error:
    if not (error.name or "").startswith("tensorflow_io"):
      raise
    raise UserError(
      f"{needed_for} needs tensorflow-io, which is not installed; it works only with tensorflow "
      f"{TFIO_TENSORFLOW} (installed: {tf.__version__}): {INSTALL_COMMAND}"
    ) from None
  except NotImplementedError as error:  # tensorflow-io's "unable to open file ... undefined symbol".
    raise _mismatch(needed_for, error) from None
  if not set(TFIO_SCHEMES) <= set(tf.io.gfile.get_registered_schemes()):
    raise _mismatch(needed_for, "its filesystem plugin did not register")
  return tensorflow_io


def _mismatch(needed_for: str, reason: object) -> UserError:
  import tensorflow as tf

  detail = " ".join(str(reason).split())
  if "undefined symbol:" in detail:  # The first one names the ABI break; the paths add nothing.
    detail = "undefined symbol " + detail.split("undefined symbol:", 1)[1].split()[0].strip("'\"],")
  return UserError(
    f"{needed_for} needs tensorflow-io, whose libraries do not load on tensorflow {tf.__version__} "
    f"({detail[:160]}); it works only with tensorflow {TFIO_TENSORFLOW}: {INSTALL_COMMAND}"
  )

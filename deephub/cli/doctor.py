"""`deep doctor`: one line per piece of the installation, each OK or a problem with its fix.

What a new user (or a bug report) needs first: the versions that matter,
the devices TensorFlow sees, whether the optional parts load (native ops,
the io extra, TensorBoard) and whether this folder holds variants. Each
check is a small function returning a `Finding`; the command prints them in
order and exits 1 when any is a problem.
"""

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import os
import platform
import sys
from collections.abc import Callable

import deephub
from deephub.errors import UserError

# The ranges setup.py requires (install_requires and python_requires).
TENSORFLOW_RANGE = ((2, 17), (2, 22))
MIN_PYTHON = (3, 11)
TENSORFLOW_INSTALL = "python -m pip install 'tensorflow>=2.17,<2.22'"


@dataclasses.dataclass(frozen=True)
class Finding:
  """One checked item: what was found, and for a problem what to do about it."""

  ok: bool
  text: str
  fix: str = ""

  def line(self) -> str:
    if self.ok:
      return f"OK       {self.text}"
    return f"PROBLEM  {self.text}; fix: {self.fix}"


def _minor(version: str) -> tuple[int, int]:
  major, minor = version.split(".")[:2]
  return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def check_deephub() -> Finding:
  return Finding(True, f"deephub {deephub.__version__} ({os.path.dirname(deephub.__file__)})")


def check_python() -> Finding:
  version = platform.python_version()
  if sys.version_info[:2] < MIN_PYTHON:
    return Finding(False, f"python {version} is older than 3.11", "use python 3.11 or newer")
  return Finding(True, f"python {version}")


def check_tensorflow() -> Finding:
  try:
    from deephub import console

    console.load_tensorflow()  # Hides the no-GPU lines; the devices item reports GPUs.
    import tensorflow as tf
  except ImportError as error:
    return Finding(False, f"tensorflow does not import ({error})", TENSORFLOW_INSTALL)
  low, high = TENSORFLOW_RANGE
  if not low <= _minor(tf.__version__) < high:
    return Finding(False, f"tensorflow {tf.__version__} is outside 2.17-2.21", TENSORFLOW_INSTALL)
  return Finding(True, f"tensorflow {tf.__version__}")


def check_keras() -> Finding:
  try:
    import keras
  except ImportError as error:
    return Finding(False, f"keras does not import ({error})", "python -m pip install 'keras>=3'")
  if _minor(keras.__version__)[0] < 3:
    return Finding(False, f"keras {keras.__version__} is Keras 2", "python -m pip install 'keras>=3'")
  return Finding(True, f"keras {keras.__version__}")


def check_devices() -> Finding:
  import tensorflow as tf

  devices = tf.config.list_physical_devices()
  names = ", ".join(d.name.replace("/physical_device:", "") for d in devices)
  if not any(d.device_type == "GPU" for d in devices):
    names += " (no GPU: training runs on the CPU)"
  return Finding(True, f"devices: {names}")


def check_native_ops() -> Finding:
  """deephub's C++ TFRecord ops: optional; without them the slower pure-TensorFlow paths run."""
  from deephub.ops import loader  # Deferred: loading the ops imports TensorFlow.

  status = loader.status()
  if status.loaded or loader.disabled():  # Turned off with DEEPHUB_NATIVE_OPS=0 on purpose.
    return Finding(True, status.describe())
  return Finding(
    False,
    status.describe(),
    "install a C++ compiler (apt-get install g++) and rerun: deephub builds the ops on first use",
  )


def check_io_extra() -> Finding:
  from deephub.io import remote

  try:
    module = remote.load_tensorflow_io(needed_for="the io extra (s3://, hdfs://, az://, http(s)://, Parquet)")
  except UserError as error:
    message = " ".join(str(error).split())
    text, _, fix = message.rpartition(": ")  # remote's messages end with the install command.
    return Finding(False, text, fix)
  import tensorflow as tf

  registered = set(tf.io.gfile.get_registered_schemes())
  schemes = ", ".join(f"{s}://" for s in remote.TFIO_SCHEMES if s in registered)
  return Finding(True, f"io extra: tensorflow-io {module.__version__}; filesystems {schemes}")


def check_tensorboard() -> Finding:
  try:
    version = importlib.metadata.version("tensorboard")
  except importlib.metadata.PackageNotFoundError:
    return Finding(False, "tensorboard is not installed", "python -m pip install tensorboard")
  return Finding(True, f"tensorboard {version}")


def check_variants_folder(folder: str = ".") -> Finding:
  path = os.path.join(folder, "configs", "variants")
  if not os.path.isdir(path):
    return Finding(
      False,
      f"no configs/variants folder in {os.path.abspath(folder)} (only packaged ones such as toy are found)",
      "run deep from your project's folder, or create configs/variants/ and put your variant files in it",
    )
  names = sorted(
    {
      os.path.splitext(name)[0]
      for name in os.listdir(path)
      if name.endswith((".py", ".yaml")) and not name.startswith("_")
    }
  )
  return Finding(
    True, f"configs/variants in {os.path.abspath(folder)}: {len(names)} variants ({', '.join(names)})"
  )


# In print order; the ones after check_tensorflow rely on it having imported.
CHECKS: list[Callable[[], Finding]] = [
  check_deephub,
  check_python,
  check_tensorflow,
  check_keras,
  check_devices,
  check_native_ops,
  check_io_extra,
  check_tensorboard,
  check_variants_folder,
]


def run(args: argparse.Namespace) -> int:
  """Prints one line per check; returns 1 when any found a problem."""
  problems = 0
  for check in CHECKS:
    finding = check()
    print(finding.line(), flush=True)
    problems += not finding.ok
    if check is check_tensorflow and "tensorflow" not in sys.modules:
      return 1  # Every later check needs TensorFlow.
  return 1 if problems else 0

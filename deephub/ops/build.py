"""Compiles deephub's native ops with the system C++ compiler: no Bazel, no BUILD files.

The same function serves `setup.py` (at `pip install`) and the loader (a
rebuild into the per-user cache when the installed TensorFlow is not the one
the packaged library was built for). It follows TensorFlow's "create an op"
guide: `g++ -shared -fPIC` with `tf.sysconfig.get_compile_flags()` and
`get_link_flags()`.

Importing this module does not import TensorFlow (setup.py loads it by path).
"""

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile

OPS_DIR = os.path.dirname(os.path.abspath(__file__))
# Everything that goes into the library; its hash names the build.
SOURCES = ("tfrecord_ops.cc", "md5.h")
_COMPILED = ("tfrecord_ops.cc",)
# The library carries `DEEPHUB_OPS_BUILD_INFO{tf=...;src=...}` (see the .cc).
_MARKER = b"DEEPHUB_OPS_BUILD_INFO{"


class BuildError(Exception):
  """The library could not be compiled (no compiler, or a compile error)."""


def source_hash() -> str:
  """A short hash of the op sources, so an edited source never loads a stale library."""
  digest = hashlib.sha256()
  for name in SOURCES:
    with open(os.path.join(OPS_DIR, name), "rb") as f:
      digest.update(name.encode() + b"\0" + f.read())
  return digest.hexdigest()[:16]


def build_info(tf_version: str) -> str:
  """What a library built now for TensorFlow `tf_version` says about itself."""
  return f"tf={tf_version};src={source_hash()}"


def read_build_info(library: str) -> str | None:
  """The build info stored in a library file, read without loading it; None if absent."""
  try:
    with open(library, "rb") as f:
      data = f.read()
  except OSError:
    return None
  start = data.find(_MARKER)
  if start < 0:
    return None
  start += len(_MARKER)
  end = data.find(b"}", start, start + 200)
  return data[start:end].decode("ascii", "replace") if end > 0 else None


def compiler() -> str | None:
  """The C++ compiler to use: $CXX, else g++ (as the TensorFlow op guide does)."""
  return shutil.which(os.environ.get("CXX") or "g++")


def compile_library(output: str) -> str:
  """Compiles the ops for the TensorFlow importable here into `output` (atomically).

  Returns:
    The build info stored in the library.

  Raises:
    BuildError: no compiler, or compilation failed (the message carries the
      compiler's last lines).
  """
  import tensorflow as tf  # Deferred: setup.py and `deep utils --help` import this module.

  cxx = compiler()
  if cxx is None:
    raise BuildError(f"no C++ compiler ({os.environ.get('CXX') or 'g++'}) on PATH")
  info = build_info(tf.__version__)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  # Written beside the target and renamed: a reader never sees half a library.
  handle, temp = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(os.path.abspath(output)))
  os.close(handle)
  command = [
    cxx,
    "-shared",
    "-fPIC",
    "-O3",
    *tf.sysconfig.get_compile_flags(),
    f'-DDEEPHUB_OPS_BUILD_INFO="{info}"',
    *(os.path.join(OPS_DIR, name) for name in _COMPILED),
    "-o",
    temp,
    *tf.sysconfig.get_link_flags(),
  ]
  try:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
      tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-5:])
      raise BuildError(f"{shlex.join(command[:3])} ... failed: {tail}")
    os.chmod(temp, 0o755)  # mkstemp makes it private; other users load installed copies.
    os.replace(temp, output)
  finally:
    if os.path.exists(temp):
      os.remove(temp)
  return info

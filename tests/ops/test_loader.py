"""deephub.ops.loader: which library loads, the rebuild rule, and the one-line fallback."""

import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from deephub.ops import build, loader
from tests.conftest import REPO

TOY = os.path.join(REPO, "deephub", "resources", "blobs", "data", "toy")
# Where `pip install` puts the library setup.py builds.
PACKAGED = os.path.join("deephub", "ops", "_tfrecord_ops.cpython-311-x86_64-linux-gnu.so")


@pytest.fixture(scope="module")
def library():
  """The library this environment loads (built once per TensorFlow into the user cache)."""
  assert loader.load() is not None, loader.status().describe()
  return loader.status().path


@pytest.fixture
def package(tmp_path):
  """A copy of the deephub package without any built library, importable from tmp_path."""
  shutil.copytree(
    os.path.join(REPO, "deephub"), tmp_path / "deephub", ignore=shutil.ignore_patterns("*.so", "__pycache__")
  )
  return tmp_path


def run(package, code, **env):
  child_env = {k: v for k, v in os.environ.items() if k != loader.DISABLE_VARIABLE}
  child_env.update({"PYTHONPATH": str(package), "TF_CPP_MIN_LOG_LEVEL": "3", **env})
  result = subprocess.run(
    [sys.executable, "-c", code], cwd=package, env=child_env, capture_output=True, text=True, timeout=300
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def other_tensorflow_copy(library_path, target):
  """The same library, with build info claiming another TensorFlow (as after an upgrade)."""
  data = open(library_path, "rb").read()
  version = f"tf={tf.__version__};".encode()
  assert version in data
  os.makedirs(os.path.dirname(target), exist_ok=True)
  with open(target, "wb") as f:
    f.write(data.replace(version, b"tf=" + b"9" * (len(version) - 4) + b";"))


def test_build_info_names_this_tensorflow_and_the_sources(library):
  assert build.read_build_info(library) == f"tf={tf.__version__};src={build.source_hash()}"


def test_a_library_for_another_tensorflow_is_never_loaded(package, library):
  # Packaged: one built for another TensorFlow. Cache: the right one. No compiler.
  other_tensorflow_copy(library, str(package / PACKAGED))
  cache = package / "cache"
  folder = cache / f"{tf.__version__}-{build.source_hash()}"
  folder.mkdir(parents=True)
  shutil.copy(library, folder / "_tfrecord_ops.so")
  code = "from deephub.ops import loader; print(loader.status().describe())"
  result = run(package, code, DEEPHUB_OPS_CACHE=str(cache), CXX="/nonexistent/g++")
  assert f"loaded from {folder / '_tfrecord_ops.so'}" in result.stdout


def test_without_a_compiler_one_warning_and_the_fallback_works(package, library, tmp_path):
  other_tensorflow_copy(library, str(package / PACKAGED))
  data = tmp_path / "data"
  shutil.copytree(TOY, data)
  os.remove(data / "_tfrecord_metadata.json")
  code = (
    "from deephub.io import metadata\n"
    "from deephub.ops import tfrecord\n"
    f"report = metadata.generate(metadata.list_data_files('{data}/*'))\n"
    "print(len(report.scanned), tfrecord.available(), tfrecord.available())\n"
    f"print(metadata.count_records(metadata.list_data_files('{data}/*')))\n"
  )
  result = run(package, code, DEEPHUB_OPS_CACHE=str(tmp_path / "cache"), CXX="/nonexistent/g++")
  assert result.stdout.splitlines() == ["2 False False", "[10, 10]"]
  warnings = [line for line in result.stderr.splitlines() if "native TFRecord ops" in line]
  assert len(warnings) == 1, result.stderr
  assert "no C++ compiler (/nonexistent/g++)" in warnings[0] and "apt-get install g++" in warnings[0]
  # The metadata it wrote is the metadata the native scan writes.
  shipped = open(os.path.join(TOY, "_tfrecord_metadata.json")).read()
  assert open(data / "_tfrecord_metadata.json").read() == shipped


def test_turned_off_by_the_environment_without_a_warning(package):
  code = (
    "from deephub.ops import tfrecord\n"
    "print(tfrecord.available())\n"
    "try:\n  tfrecord.tfrecord_scan('x')\nexcept tfrecord.NativeOpsUnavailableError as e:\n  print(e)\n"
  )
  result = run(package, code, DEEPHUB_NATIVE_OPS="0")
  assert result.stdout.splitlines() == [
    "False",
    "native TFRecord ops: not loaded (turned off by DEEPHUB_NATIVE_OPS=0); using the pure-TensorFlow paths",
  ]
  assert "native TFRecord ops" not in result.stderr


def test_deep_version_reports_the_library(library):
  command = [sys.executable, "-m", "deephub.cli.main", "--version"]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.splitlines()[1:] == [
    f"tensorflow {tf.__version__}",
    f"native TFRecord ops: loaded from {library} (tf={tf.__version__};src={build.source_hash()})",
  ]

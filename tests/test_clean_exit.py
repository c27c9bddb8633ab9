"""deephub.clean_exit: exit codes and flushed output, with and without tensorflow-io loaded."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _run(body: str, *, tfio_loaded: bool):
  # A stand-in module is enough to take the os._exit path; the real S3 abort
  # is covered in the io suite (tests/io/test_s3.py).
  setup = "import sys, types; sys.modules['tensorflow_io'] = types.ModuleType('tensorflow_io')\n"
  script = (setup if tfio_loaded else "") + "from deephub import clean_exit\n" + body
  return subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": REPO},
                        capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize("tfio_loaded", [False, True])
@pytest.mark.parametrize(
  "entry, code, stderr_has",
  [
    ("lambda: None", 0, ""),
    ("lambda: sys.exit(0)", 0, ""),
    ("lambda: sys.exit(3)", 3, ""),
    ("lambda: sys.exit('bad input')", 1, "bad input"),
    ("lambda: 1 / 0", 1, "ZeroDivisionError"),
  ],
)
def test_run_and_exit_keeps_the_code(entry, code, stderr_has, tfio_loaded):
  body = f"import sys\nprint('out', end='')\nclean_exit.run_and_exit({entry})\n"
  result = _run(body, tfio_loaded=tfio_loaded)
  assert result.returncode == code, result.stderr
  assert result.stdout == "out"  # Unflushed output survives os._exit.
  assert stderr_has in result.stderr


def test_loaded_flag_follows_the_import():
  result = _run("print(clean_exit.tensorflow_io_loaded())", tfio_loaded=False)
  assert result.stdout.strip() == "False"
  assert _run("print(clean_exit.tensorflow_io_loaded())", tfio_loaded=True).stdout.strip() == "True"

"""`deep doctor` and `deep --version`: one line per item, OK or the problem with its fix."""

import os

import pytest

import deephub
from deephub.cli import doctor
from deephub.io import remote
from tests.cli_run import run_deep
from tests.conftest import REPO


def test_version():
  done = run_deep("--version")
  assert done.returncode == 0, done.stderr
  assert done.stdout.startswith(f"deephub {deephub.__version__} (")


def _items(stdout):
  return {line.split()[1]: line for line in stdout.splitlines()}


def test_doctor_reports_the_missing_io_extra_with_its_fix():
  """This environment (TensorFlow 2.21, no tensorflow-io) is healthy except for the io extra."""
  done = run_deep("doctor")
  assert done.returncode == 1, done.stdout + done.stderr
  assert done.stderr == ""  # TensorFlow's no-GPU lines stay hidden here too.
  lines = done.stdout.splitlines()
  assert len(lines) == len(doctor.CHECKS)
  problems = [line for line in lines if not line.startswith("OK       ")]
  assert problems == [
    "PROBLEM  the io extra (s3://, hdfs://, az://, http(s)://, Parquet) needs tensorflow-io, which is "
    f"not installed; it works only with tensorflow 2.17 (installed: {_tf_version()}); "
    f"fix: {remote.INSTALL_COMMAND}"
  ]
  assert lines[0] == f"OK       deephub {deephub.__version__} ({os.path.join(REPO, 'deephub')})"
  assert lines[2] == f"OK       tensorflow {_tf_version()}"
  assert lines[4].startswith("OK       devices: CPU:0")
  assert lines[-1].startswith(f"OK       configs/variants in {REPO}: ") and "toy" in lines[-1]


@pytest.mark.io
def test_doctor_passes_on_a_healthy_install():
  """The io environment has every part: TensorFlow 2.17 with tensorflow-io."""
  done = run_deep("doctor")
  assert done.returncode == 0, done.stdout + done.stderr
  lines = done.stdout.splitlines()
  assert len(lines) == len(doctor.CHECKS) and all(line.startswith("OK       ") for line in lines), lines
  io_line = next(line for line in lines if "io extra" in line)
  assert "tensorflow-io 0.37.1; filesystems " in io_line and "s3://" in io_line and "hdfs://" in io_line


def _tf_version():
  import tensorflow as tf

  return tf.__version__


def test_variants_folder(tmp_path):
  missing = doctor.check_variants_folder(str(tmp_path))
  assert not missing.ok and "create configs/variants/" in missing.fix
  (tmp_path / "configs" / "variants").mkdir(parents=True)
  for name in ("b.py", "a.yaml", "a.py", "_private.py", "notes.txt"):
    (tmp_path / "configs" / "variants" / name).write_text("")
  found = doctor.check_variants_folder(str(tmp_path))
  assert found.ok and found.text.endswith(": 2 variants (a, b)")


def test_native_ops_load_in_this_build():
  # This machine has g++, so setup.py (or the first use) built them.
  finding = doctor.check_native_ops()
  assert finding.ok and finding.text.startswith("native TFRecord ops: loaded from "), finding.text


@pytest.mark.parametrize("disabled", [False, True])
def test_native_ops_that_do_not_load_are_a_problem_unless_turned_off(monkeypatch, disabled):
  from deephub.ops import loader

  status = loader.Status(loaded=False, reason="g++ not found")
  monkeypatch.setattr(loader, "status", lambda: status)
  monkeypatch.setattr(loader, "disabled", lambda: disabled)
  finding = doctor.check_native_ops()
  assert finding.ok == disabled and "g++ not found" in finding.text
  if not disabled:
    assert "apt-get install g++" in finding.fix


@pytest.mark.parametrize(
  "finding, line",
  [
    (doctor.Finding(True, "python 3.11.7"), "OK       python 3.11.7"),
    (doctor.Finding(False, "tensorboard is not installed", "pip install tensorboard"),
     "PROBLEM  tensorboard is not installed; fix: pip install tensorboard"),
  ],
)  # fmt: skip
def test_finding_lines(finding, line):
  assert finding.line() == line

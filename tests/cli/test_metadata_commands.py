"""`deep utils generate-metadata | total-examples | validate` on copies of the toy data.

Each test runs with the native scan op and with the pure-Python fallback (`native_ops`).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from deephub.cli.main import main
from deephub.resources import toy_data_dir
from tests import tfrecord_reference
from tests.cli_run import script_env
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("native_ops")


@pytest.fixture
def folder(tmp_path):
  for name in ("train-00000-of-00001", "validation-00000-of-00001"):
    shutil.copy(os.path.join(toy_data_dir(), name), tmp_path)
  return tmp_path


def test_generate_total_and_validate(folder, capsys):
  (folder / "README").write_text("not TFRecords at all")
  pattern = str(folder / "*")
  assert main(["utils", "generate-metadata", pattern]) == 0
  out, err = capsys.readouterr()
  assert out.startswith(f"Found 3 files matching {pattern}\n")
  assert "Scanned 2 files" in out and "skipped 1 unreadable" in out
  # Off a terminal (pytest captures stderr) no bar: only the skipped file's line.
  [line] = err.splitlines()
  # The reason differs between the native scan and the pure-Python walk.
  assert line.startswith(f"skipping {folder / 'README'}, unreadable: ")
  assert set(json.loads((folder / "_tfrecord_metadata.json").read_text())["files"]) == {
    "train-00000-of-00001",
    "validation-00000-of-00001",
  }

  data_pattern = str(folder / "*-of-*")
  assert main(["utils", "total-examples", data_pattern]) == 0
  assert capsys.readouterr().out == "Total number of examples: 20\n"
  assert main(["utils", "validate", data_pattern, "--deep-check"]) == 0
  assert "2 files match their metadata (md5 checked)" in capsys.readouterr().out

  # Same size, changed content: only --deep-check notices; --force refreshes.
  train = folder / "train-00000-of-00001"
  original = train.read_bytes()
  records = tfrecord_reference.payloads(original, tfrecord_reference.scan(original)[0])
  records[0] = records[0][:-1] + b"!"  # Valid records, same size, other bytes.
  train.write_bytes(b"".join(tfrecord_reference.frame(record) for record in records))
  assert main(["utils", "validate", data_pattern, "--shallow-check"]) == 0
  capsys.readouterr()
  assert main(["utils", "validate", data_pattern, "--deep-check"]) == 1
  assert f"{train}: md5 differs" in capsys.readouterr().out
  assert main(["utils", "generate-metadata", data_pattern]) == 0
  assert "kept 2 up-to-date entries" in capsys.readouterr().out
  assert main(["utils", "generate-metadata", data_pattern, "--force"]) == 0
  assert "Scanned 2 files" in capsys.readouterr().out
  assert main(["utils", "validate", data_pattern, "--deep-check"]) == 0


def test_total_examples_skips_files_without_metadata_with_a_warning(folder, capsys):
  assert main(["utils", "generate-metadata", str(folder / "train-*")]) == 0
  capsys.readouterr()
  shutil.copy(folder / "validation-00000-of-00001", folder / "extra-00000-of-00001")
  assert main(["utils", "total-examples", str(folder / "*")]) == 0
  out, err = capsys.readouterr()
  assert out == "Total number of examples: 10\n"  # Only the train file has an entry.
  meta = folder / "_tfrecord_metadata.json"
  assert err.splitlines() == [
    f"warning: skipping {folder / 'extra-00000-of-00001'}: no entry in {meta}",
    f"warning: skipping {folder / 'validation-00000-of-00001'}: no entry in {meta}",
    f"warning: skipped 2 of 3 files without up-to-date metadata; run `deep utils generate-metadata "
    f"'{folder}/*'` to count them",
  ]


def test_total_examples_stdout_is_the_one_line_scripts_parse():
  code = "import sys\nfrom deephub.cli.main import main\nsys.exit(main(sys.argv[1:]))"
  result = subprocess.run(
    [sys.executable, "-c", code, "utils", "total-examples", os.path.join(toy_data_dir(), "*")],
    env={**os.environ, "PYTHONPATH": REPO},
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert (result.returncode, result.stdout) == (0, "Total number of examples: 20\n"), result.stderr


def test_validate_lists_files_the_metadata_names_but_that_are_gone(folder, capsys):
  pattern = str(folder / "*-of-*")
  assert main(["utils", "generate-metadata", pattern]) == 0
  capsys.readouterr()
  os.remove(folder / "validation-00000-of-00001")
  meta = folder / "_tfrecord_metadata.json"
  assert main(["utils", "validate", pattern]) == 1
  out, err = capsys.readouterr()
  assert out == f"{folder / 'validation-00000-of-00001'}: missing, but listed in {meta}\n"
  assert err.startswith("0 of 1 files do not match their metadata; 1 files listed in it are missing")
  # A pattern naming only the other split does not report it...
  assert main(["utils", "validate", str(folder / "train-*"), "--deep-check"]) == 0
  capsys.readouterr()
  # ...and one whose every file is gone still reports them, not "matches no file".
  os.remove(folder / "train-00000-of-00001")
  assert main(["utils", "validate", pattern]) == 1
  out, err = capsys.readouterr()
  assert out.splitlines() == [
    f"{folder / name}: missing, but listed in {meta}"
    for name in ("train-00000-of-00001", "validation-00000-of-00001")
  ]
  assert err == "2 files listed in the metadata are missing\n"


def test_pattern_without_files(tmp_path, capsys):
  assert main(["utils", "validate", str(tmp_path / "*")]) == 2
  assert "matches no file; quote it" in capsys.readouterr().err


def test_documented_generate_command_verbatim(folder):
  """`deep utils generate-metadata '/path-to-files-folder/*'` through the installed script."""
  result = subprocess.run(
    ["bash", "-c", f"deep utils generate-metadata '{folder}/*' --compression_type ''"],
    env=script_env(),
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("Found 2 files")
  entries = json.loads((folder / "_tfrecord_metadata.json").read_text())["files"]
  assert entries["train-00000-of-00001"]["total_records"] == 10


def test_generate_and_count_scan_without_importing_tensorflow(folder, native_ops):
  """The CLI scans through ctypes (deephub.ops.direct): same metadata, no `import tensorflow`."""
  code = (
    "import sys\nfrom deephub.cli.main import main\nfrom deephub.ops import direct\n"
    f"main(['utils', 'generate-metadata', '{folder}/*'])\n"
    f"main(['utils', 'total-examples', '{folder}/*'])\n"
    "print('tensorflow' in sys.modules, direct.available())"
  )
  command = [sys.executable, "-c", code]
  result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
  assert result.stdout.splitlines()[-2:] == [
    "Total number of examples: 20",
    f"False {native_ops == 'native'}",
  ]
  shipped = open(os.path.join(toy_data_dir(), "_tfrecord_metadata.json")).read()
  assert (folder / "_tfrecord_metadata.json").read_text() == shipped

"""Hostile `_tfrecord_metadata.json` values through the real CLIs.

Each bad value must end in exactly one error line naming the metadata file
and key, with the fix; `validate` must flag it, `generate-metadata` must
rescan it, and nothing already written (data, other entries) may change.
"""

import hashlib
import json
import os
import shutil

import pytest

from deephub.errors import UserError
from deephub.io import metadata
from deephub.resources import toy_data_dir
from tests.cli_run import run_deep
from tests.conftest import run_cli

TRAIN = "train-00000-of-00001"
VALIDATION = "validation-00000-of-00001"
META = "_tfrecord_metadata.json"
# Raw JSON text for a count: each is no record count of the 510-byte toy file.
BAD_COUNTS = {
  "nan": "NaN",
  "infinity": "Infinity",
  "string": '"10"',
  "float": "2.5",
  "float_exponent": "1e15",
  "integral_float": "10.0",
  "negative": "-5",
  "zero": "0",
  "bool": "true",
  "null": "null",
  "list": "[10]",
  "more_than_the_file_holds": "32",  # 510 bytes / 16 bytes of framing = 31 at most.
  "huge_int": "1000000000000000",
  "beyond_int64": "9" * 30,
}
TIMEOUT = 60  # Seconds: a hang on a bad value fails the test instead of blocking it.
BAD_SIZES = {"string": '"510"', "float": "510.0", "negative": "-510", "beyond_int64": str(2**63)}


def one_line(stderr: str) -> str:
  """The single line of stderr; fails on more lines or a traceback."""
  assert "Traceback" not in stderr, stderr
  lines = stderr.strip().splitlines()
  assert len(lines) == 1, stderr
  return lines[0]


def deephub_error_line(stderr: str) -> str:
  """The one `deephub: error:` line of a `python -m deephub.train` run (which also logs)."""
  assert "Traceback" not in stderr, stderr
  lines = [line for line in stderr.splitlines() if line.startswith("deephub: error:")]
  assert len(lines) == 1, stderr
  return lines[0]


def snapshot(folder) -> dict[str, str]:
  return {path.name: hashlib.md5(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def write_entry_value(folder, key: str, raw: str) -> None:
  """Sets `files.<train>.<key>` to the raw JSON text `raw`, the rest as generated."""
  data = json.loads((folder / META).read_text())
  data["files"][TRAIN][key] = "@VALUE@"
  (folder / META).write_text(json.dumps(data, indent=2).replace('"@VALUE@"', raw))


@pytest.fixture
def folder(tmp_path):
  data = tmp_path / "data"
  shutil.copytree(toy_data_dir(), data)
  return data


def _bad_cases():
  return [
    pytest.param("total_records", raw, id=f"total_records-{name}") for name, raw in BAD_COUNTS.items()
  ] + [pytest.param("file_size", raw, id=f"file_size-{name}") for name, raw in BAD_SIZES.items()]


@pytest.mark.parametrize("key, raw", _bad_cases())
def test_validate_flags_and_generate_rescans_a_bad_entry(folder, key, raw):
  write_entry_value(folder, key, raw)
  before = snapshot(folder)
  pattern = str(folder / "*-of-*")

  for depth in ("--shallow-check", "--deep-check"):
    validate = run_deep("utils", "validate", pattern, depth, timeout=TIMEOUT)
    assert validate.returncode == 1
    assert f"{folder / TRAIN}: in {folder / META}, files.{TRAIN}.{key}" in validate.stdout
    assert one_line(validate.stderr) == "1 of 2 files do not match their metadata"
  # The feeders' path (the training test below runs it through the CLI).
  with pytest.raises(UserError) as refused:
    metadata.record_counts([str(folder / TRAIN), str(folder / VALIDATION)])
  message = str(refused.value)
  assert "\n" not in message and message.startswith(f"bad TFRecord metadata for {folder / TRAIN}: ")
  for fragment in (str(folder / META), f"files.{TRAIN}.{key}", f"generate-metadata '{folder}/*' --force"):
    assert fragment in message
  assert snapshot(folder) == before  # Validating and refusing change nothing.

  # No --force: bad entries are not kept.
  generate = run_deep("utils", "generate-metadata", pattern, timeout=TIMEOUT)
  assert generate.returncode == 0, generate.stderr
  assert "Scanned 1 files" in generate.stdout and "kept 1 up-to-date entries" in generate.stdout
  entries = json.loads((folder / META).read_text())["files"]
  assert entries[TRAIN]["total_records"] == 10 and entries[TRAIN]["file_size"] == 510
  shipped = json.loads(open(os.path.join(toy_data_dir(), META)).read())["files"]
  assert entries == shipped
  assert {name: md5 for name, md5 in snapshot(folder).items() if name != META} == {
    name: md5 for name, md5 in before.items() if name != META
  }


# One value per way training went wrong in the issue: NaN trained 0 steps and
# exited 0, "10" gave a traceback, 0 said "lower batch_size", 1e15 trained
# forever. (Each run starts TensorFlow; the other values take the same path,
# which the utils test above covers.)
@pytest.mark.parametrize("name", ["nan", "string", "zero", "float_exponent"])
def test_training_refuses_a_bad_count_in_one_line(folder, tmp_path, name):
  write_entry_value(folder, "total_records", BAD_COUNTS[name])
  before = snapshot(folder)
  result = run_cli(
    "--variant=toy", f"--config.model.model_dir={tmp_path / 'model'}", "--config.runtime.xla=False",
    f"--config.train.train_feeder.file_patterns={folder / 'train-*'}",
    f"--config.train.eval_feeder.file_patterns={folder / 'validation-*'}",
  )  # fmt: skip
  assert result.returncode == 2, result.stderr
  line = deephub_error_line(result.stderr)
  assert line.startswith("deephub: error: train.train_feeder: bad TFRecord metadata for")
  assert f"{folder / META}, files.{TRAIN}.total_records" in line
  assert "--force" in line and "batch_size" not in line
  assert not list((tmp_path / "model").glob("model.ckpt-*"))
  assert snapshot(folder) == before


def test_gzip_counts_may_exceed_the_compressed_size(tmp_path):
  # 16-byte empty records compress ~1000:1: 5000 of them fit in a ~100-byte file.
  import gzip

  record = (0).to_bytes(8, "little") + bytes(8)
  (tmp_path / "many.gz").write_bytes(gzip.compress(record * 5000))
  pattern = str(tmp_path / "*.gz")
  generated = run_deep("utils", "generate-metadata", pattern, "--compression_type", "GZIP", timeout=TIMEOUT)
  assert generated.returncode == 0
  assert json.loads((tmp_path / META).read_text())["files"]["many.gz"]["total_records"] == 5000
  assert run_deep("utils", "validate", pattern, "--deep-check", timeout=TIMEOUT).returncode == 0
  total = run_deep("utils", "total-examples", pattern, timeout=TIMEOUT)
  assert total.returncode == 0 and total.stdout == "Total number of examples: 5000\n", total.stderr


@pytest.mark.parametrize(
  "text, reason",
  [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"version": 1, "files": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001, "nested too deeply"),
    ('{"version": 1, "files": [1]}', "a 'files' object"),
    ('{"version": "1", "files": {}}', "version '1', expected 1"),
    ("\xff\xfe not json", "not valid TFRecord metadata"),
  ],
  ids=["deep_list", "deep_files", "files_list", "version_string", "binary"],
)
def test_a_malformed_metadata_file_is_one_line_and_left_alone(folder, text, reason):
  (folder / META).write_bytes(text.encode("latin-1"))
  before = snapshot(folder)
  pattern = str(folder / "*-of-*")
  for args in (
    ("total-examples", pattern),
    ("validate", pattern, "--deep-check"),
    ("generate-metadata", pattern),
  ):
    result = run_deep("utils", *args, timeout=TIMEOUT)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert f"{folder / META} is not valid TFRecord metadata" in line and reason in line
    assert "delete it and run `deep utils generate-metadata" in line
  assert snapshot(folder) == before

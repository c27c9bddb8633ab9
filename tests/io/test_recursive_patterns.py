"""`**` in file_patterns and `deep utils` patterns matches folders at any depth, as old pathlib globs did."""

import os
import shutil

import pytest

from deephub.cli.main import main
from deephub.io import TFRecordExamplesFeeder, filesystem
from deephub.resources import toy_data_dir
from tests.conftest import run_cli

NUMBER = {"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}


@pytest.fixture
def nested(tmp_path):
  """train-* shards with metadata at three depths: data/, data/a/, data/a/b/."""
  source = toy_data_dir()
  for folder in ("data", "data/a", "data/a/b"):
    os.makedirs(tmp_path / folder)
    for name in ("train-00000-of-00001", "validation-00000-of-00001", "_tfrecord_metadata.json"):
      shutil.copy(os.path.join(source, name), tmp_path / folder / name)
  return tmp_path / "data"


def test_feeder_reads_every_depth(nested):
  feeder = TFRecordExamplesFeeder(
    file_patterns=[str(nested / "**" / "train-*")], batch_size=10, features_map=NUMBER
  )
  assert feeder.files == [str(nested / p / "train-00000-of-00001") for p in ("a/b", "a", "")]  # Sorted.
  assert feeder.num_examples() == 30
  # Without `**` the pattern stays one level deep.
  shallow = TFRecordExamplesFeeder(
    file_patterns=[str(nested / "*" / "train-*")], batch_size=10, features_map=NUMBER
  )
  assert shallow.files == [str(nested / "a" / "train-00000-of-00001")]


def test_deep_utils_take_recursive_patterns(nested, capsys):
  assert main(["utils", "total-examples", str(nested / "**" / "validation-*")]) == 0
  assert capsys.readouterr().out == "Total number of examples: 30\n"
  assert main(["utils", "validate", str(nested / "**" / "*-of-*")]) == 0
  assert "6 files match their metadata" in capsys.readouterr().out


@pytest.mark.parametrize(
  "path, pattern, expected",
  [
    ("train-0", "**/train-*", True),
    ("a/b/train-0", "**/train-*", True),
    ("a/b/train-0", "a/**/train-*", True),
    ("a/train-0", "a/**/b/train-*", False),
    ("a/x/b/train-0", "a/**/b/train-*", True),
    ("a/b/eval-0", "**/train-*", False),
    ("a/b/train-0", "*/train-*", False),
    ("a/b", "**", True),
  ],
)
def test_component_matcher_of_remote_paths(path, pattern, expected):
  assert filesystem.matches(path.split("/"), pattern.split("/")) is expected


def test_trains_from_a_recursive_pattern_through_the_cli(nested, tmp_path):
  result = run_cli(
    "--variant=toy",
    f"--config.model.model_dir={tmp_path / 'model'}",
    "--config.train.epochs=1",
    f"--config.train.train_feeder.file_patterns={nested / '**' / 'train-*'}",
  )
  assert result.returncode == 0, result.stderr
  assert "step 3/3" in result.stderr  # 30 examples in batches of 10: all three depths were read.

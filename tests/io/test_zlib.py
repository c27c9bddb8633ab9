"""`compression: ZLIB` wherever GZIP works: feeders, metadata, validate, generate-metadata, training."""

import json
import os
import zlib

import pytest
import tensorflow as tf

from deephub.cli.main import main
from deephub.errors import UserError
from deephub.io import TFRecordExamplesFeeder, metadata
from deephub.resources import toy_data_dir
from tests.conftest import run_cli
from tests.tfrecord_reference import frame

NUMBER = {"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}
LABEL = {"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}


@pytest.fixture
def zlib_toy(tmp_path):
  """The toy shards rewritten as ZLIB TFRecord files, without metadata."""
  for name in ("train-00000-of-00001", "validation-00000-of-00001"):
    records = list(tf.data.TFRecordDataset(os.path.join(toy_data_dir(), name)).as_numpy_iterator())
    with tf.io.TFRecordWriter(str(tmp_path / f"{name}.zz"), options="ZLIB") as writer:
      for record in records:
        writer.write(record)
  return tmp_path


def test_generate_total_and_deep_validate(zlib_toy, capsys):
  pattern = str(zlib_toy / "*.zz")
  assert main(["utils", "generate-metadata", pattern, "--compression_type", "ZLIB"]) == 0
  entries = json.loads((zlib_toy / metadata.METADATA_FILENAME).read_text())["files"]
  assert {name: entry["total_records"] for name, entry in entries.items()} == {
    "train-00000-of-00001.zz": 10,
    "validation-00000-of-00001.zz": 10,
  }
  capsys.readouterr()
  assert main(["utils", "total-examples", pattern]) == 0
  assert capsys.readouterr().out == "Total number of examples: 20\n"
  assert main(["utils", "validate", pattern, "--deep-check"]) == 0
  assert "2 files match their metadata (md5 checked)" in capsys.readouterr().out


def test_read_as_uncompressed_the_scan_says_so(zlib_toy):
  with pytest.raises(metadata.UnreadableFileError):
    metadata.scan_file(str(zlib_toy / "train-00000-of-00001.zz"), "")
  with pytest.raises(metadata.UnreadableFileError, match="not a ZLIB file"):
    metadata.scan_file(os.path.join(toy_data_dir(), "train-00000-of-00001"), "ZLIB")


def test_sniffing_tells_zlib_from_a_record_whose_length_looks_like_a_zlib_header(tmp_path):
  # A 0x9c78-byte record starts with 78 9c, the commonest zlib header.
  plain = tmp_path / "plain"
  plain.write_bytes(frame(b"x" * 0x9C78))
  assert plain.read_bytes()[:2] == b"\x78\x9c"
  packed = tmp_path / "packed"
  packed.write_bytes(zlib.compress(frame(b"abc")))
  assert [metadata.sniff_compression(str(path)) for path in (plain, packed)] == ["", "ZLIB"]


def test_feeder_reads_zlib_and_its_missing_metadata_names_the_zlib_command(zlib_toy):
  files = [str(zlib_toy / "train-*")]
  with pytest.raises(
    UserError, match=r"no entry in .*--compression_type ZLIB` or set the feeder's auto_generate"
  ):
    TFRecordExamplesFeeder(file_patterns=files, batch_size=4, features_map=NUMBER, compression="ZLIB")
  feeder = TFRecordExamplesFeeder(
    file_patterns=files, batch_size=4, features_map=NUMBER, labels_map=LABEL, compression="ZLIB",
    auto_generate_meta=True,
  )  # fmt: skip
  assert feeder.steps_per_epoch() == 3
  feeder.check_schema("train.train_feeder")
  batches = [features["number"].numpy().tolist() for features, _ in feeder.dataset(epochs=1)]
  assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_unknown_compression_lists_zlib():
  with pytest.raises(UserError, match=r"compression is 'BZIP2'; use '', 'GZIP' or 'ZLIB'"):
    TFRecordExamplesFeeder(
      file_patterns=[os.path.join(toy_data_dir(), "train-*")], batch_size=4, features_map=NUMBER,
      compression="BZIP2",
    )  # fmt: skip


def test_trains_toy_from_zlib_files_through_the_cli(zlib_toy):
  assert main(["utils", "generate-metadata", str(zlib_toy / "*.zz"), "--compression_type", "ZLIB"]) == 0
  feeders = "train.train_feeder", "train.eval_feeder"
  result = run_cli(
    "--variant=toy",
    f"--config.model.model_dir={zlib_toy / 'model'}",
    *(f"--config.{feeder}.compression=ZLIB" for feeder in feeders),
    f"--config.train.train_feeder.file_patterns={zlib_toy / 'train-*'}",
    f"--config.train.eval_feeder.file_patterns={zlib_toy / 'validation-*'}",
  )
  assert result.returncode == 0, result.stderr
  assert "finished toy" in result.stderr
  assert tf.train.latest_checkpoint(str(zlib_toy / "model")).endswith("model.ckpt-10")

"""Hostile predict inputs through the real CLI: one error line, nothing lost.

Garbage or CRC-damaged files, a record that is not a tf.Example, a record
without a configured feature, and a VarLenFeature for a dense model each used
to end in a traceback (DataLossError, UnicodeDecodeError,
InvalidArgumentError, TypeError). One trained toy model_dir serves all cases.
"""

import hashlib
import re

import pytest
import tensorflow as tf

from deephub.io import metadata
from tests.conftest import run_cli

PREVIOUS_PREDICTIONS = '{"classes": 7}\n'
VARLEN_NUMBER = '{"number": {"type": "VarLenFeature", "dtype": "int64"}}'
DENSE_LABEL = '{"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}'


def example(**int_features) -> bytes:
  feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=[v])) for k, v in int_features.items()}
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_records(path, payloads) -> list[int]:
  """Writes TFRecords; returns the byte offset at which each record starts."""
  with tf.io.TFRecordWriter(str(path)) as writer:
    for payload in payloads:
      writer.write(payload)
  offsets, offset = [], 0
  for payload in payloads:
    offsets.append(offset)
    offset += len(payload) + 16
  return offsets


def labelled(count: int) -> list[bytes]:
  return [example(number=i, label=i) for i in range(count)]


def snapshot(folder) -> dict[str, str]:
  return {
    str(path.relative_to(folder)): hashlib.md5(path.read_bytes()).hexdigest()
    for path in sorted(folder.rglob("*"))
    if path.is_file()
  }


def error_line(result) -> str:
  """The one `deephub: error:` line; fails on a traceback or on more error lines."""
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines() if line.startswith("deephub: error:")]
  assert len(lines) == 1, result.stderr[-3000:]
  return lines[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("trained") / "model"
  result = run_cli(
    "--variant=toy",
    f"--config.model.model_dir={model_dir}",
    "--config.train.epochs=1",
    "--config.runtime.xla=False",
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return model_dir


def predict(model_dir, data, output, *overrides):
  return run_cli(
    "--variant=toy", "--mode=predict", f"--config.model.model_dir={model_dir}", "--config.runtime.xla=False",
    f"--predictions_path={output}", f"--config.train.eval_feeder.file_patterns={data / '*'}",
    *overrides,
  )  # fmt: skip


def garbage(path):
  """Same size as a good file with metadata, other bytes: the size check cannot see it."""
  size = len(b"".join(labelled(6))) + 16 * 6
  path.write_bytes((b"not a tfrecord! " * size)[:size])
  return r"corrupted record at (\d+)", 0


def crc_damaged(path):
  offsets = write_records(path, labelled(6))
  data = bytearray(path.read_bytes())
  data[offsets[3] + 12 + 2] ^= 0xFF  # A payload byte of record 3: its data CRC no longer matches.
  path.write_bytes(bytes(data))
  return r"corrupted record at (\d+)", offsets[3]


def not_an_example(path):
  offsets = write_records(path, [*labelled(2), b"\xff\xfe this is no protocol buffer \x00\x01" * 3])
  return r"record 2 \(byte offset (\d+)\) is not a tf\.Example", offsets[2]


def missing_feature(path):
  offsets = write_records(path, [*labelled(3), example(other=1)])
  return r"record 3 \(byte offset (\d+)\) has no feature 'number' \(it has 'other'\)", offsets[3]


@pytest.mark.parametrize("make", [garbage, crc_damaged, not_an_example, missing_feature])
def test_a_bad_record_is_one_line_naming_file_and_offset(model_dir, tmp_path, make):
  data = tmp_path / "data"
  data.mkdir()
  if make in (garbage, crc_damaged):  # Damaged after its metadata was written, as in the wild.
    write_records(data / "part-0", labelled(6))
    metadata.generate([str(data / "part-0")])
  pattern, offset = make(data / "part-0")
  metadata.generate([str(data / "part-0")])  # A size change is refused first; same size is kept.
  output = tmp_path / "predictions.jsonl"
  output.write_text(PREVIOUS_PREDICTIONS)
  before = snapshot(data), snapshot(model_dir)

  line = error_line(predict(model_dir, data, output))

  assert line.startswith("deephub: error: train.eval_feeder: ")
  assert str(data / "part-0") in line
  match = re.search(pattern, line)
  assert match, line
  # TensorFlow reports a corrupted record at its length field or its data (+12).
  assert int(match.group(1)) in (offset, offset + 12), line
  assert output.read_text() == PREVIOUS_PREDICTIONS  # The earlier predictions stay whole.
  assert not (tmp_path / "predictions.jsonl.partial").exists()
  assert (snapshot(data), snapshot(model_dir)) == before


def test_unlabelled_records_predict(model_dir, tmp_path):
  # Predicting reads features only: data without the label is not refused.
  data = tmp_path / "data"
  data.mkdir()
  write_records(data / "part-0", [example(number=i) for i in range(7)])
  metadata.generate([str(data / "part-0")])
  output = tmp_path / "predictions.jsonl"
  result = predict(model_dir, data, output)
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(output.read_text().splitlines()) == 7


def test_predict_refuses_a_varlen_feature_for_a_dense_model(model_dir, tmp_path):
  data = tmp_path / "data"
  data.mkdir()
  write_records(data / "part-0", labelled(4))
  metadata.generate([str(data / "part-0")])
  output = tmp_path / "predictions.jsonl"
  line = error_line(
    predict(model_dir, data, output, f"--config.train.eval_feeder.features_map={VARLEN_NUMBER}")
  )
  assert "train.eval_feeder.features_map.number is a VarLenFeature" in line
  assert "DebugToyModel takes dense features only" in line
  assert not output.exists()


def test_training_refuses_a_varlen_feature_for_a_dense_model(tmp_path):
  result = run_cli(
    "--variant=toy", f"--config.model.model_dir={tmp_path / 'model'}", "--config.runtime.xla=False",
    f"--config.train.train_feeder.features_map={VARLEN_NUMBER}",
    # The toy's label is `number` too; the bundled data's `label` keeps the label dense.
    f"--config.train.train_feeder.labels_map={DENSE_LABEL}",
  )  # fmt: skip
  line = error_line(result)
  assert "train.train_feeder.features_map.number is a VarLenFeature" in line
  assert "FixedLenFeature" in line
  assert not list((tmp_path / "model").glob("model.ckpt-*"))

"""TFRecordExamplesFeeder with metadata record counts and GZIP data."""

import json
import os
import shutil

import numpy as np
import pytest

from deephub.config import defaults
from deephub.engine import train_and_evaluate
from deephub.errors import UserError
from deephub.io import make_feeder
from deephub.resources import toy_data_dir

# Each test runs with the native TFRecord ops and without them (DEEPHUB_NATIVE_OPS=0).
pytestmark = pytest.mark.usefixtures("native_ops")

COMPRESSED_TOY = os.path.join(os.path.dirname(toy_data_dir()), "compressed_toy")


def toy_feeder(pattern, **overrides):
  config = defaults.feeder_config(
    batch_size=4,
    file_patterns=[pattern],
    features_map={"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
    labels_map={"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
  )
  config.update(overrides)
  return make_feeder(config, where="train.train_feeder")


def numbers(feeder):
  return sorted(int(n) for features, _ in feeder.dataset(epochs=1) for n in features["number"].numpy())


@pytest.mark.parametrize(
  "pattern, compression",
  [(os.path.join(toy_data_dir(), "*"), ""), (os.path.join(COMPRESSED_TOY, "train-*"), "GZIP")],
)
def test_reads_plain_and_gzip_toy_data(pattern, compression):
  feeder = toy_feeder(pattern, compression=compression)
  assert feeder.num_examples() == (20 if compression == "" else 10)
  assert numbers(feeder) == list(range(feeder.num_examples()))
  assert not any(f.endswith(".json") for f in feeder.files)  # 'toy/*' leaves the metadata out.


def test_counts_come_from_metadata_not_data(tmp_path):
  shutil.copytree(toy_data_dir(), tmp_path / "toy")
  meta = tmp_path / "toy" / "_tfrecord_metadata.json"
  data = json.loads(meta.read_text())
  data["files"]["train-00000-of-00001"]["total_records"] = 25  # Same size, another count.
  meta.write_text(json.dumps(data))
  feeder = toy_feeder(str(tmp_path / "toy" / "train-*"))
  assert feeder.num_examples() == 25
  assert feeder.steps_per_epoch() == 7
  assert toy_feeder(str(tmp_path / "toy" / "train-*"), max_examples=6).num_examples() == 6
  assert toy_feeder(str(tmp_path / "toy" / "train-*"), drop_remainder=True).steps_per_epoch() == 6


def test_stale_metadata_fails_unless_auto_generated(tmp_path):
  shutil.copy(os.path.join(toy_data_dir(), "train-00000-of-00001"), tmp_path)
  with pytest.raises(
    UserError, match=r"train.train_feeder: TFRecord metadata does not cover .*train-00000-of-00001"
  ):
    toy_feeder(str(tmp_path / "train-*"))
  feeder = toy_feeder(str(tmp_path / "train-*"), auto_generate_meta=True)
  assert feeder.num_examples() == 10
  assert (tmp_path / "_tfrecord_metadata.json").exists()


def test_trains_on_gzip_toy_data(toy_config):
  for feeder, split in (
    (toy_config.train.train_feeder, "train"),
    (toy_config.train.eval_feeder, "validation"),
  ):
    feeder.file_patterns = [os.path.join(COMPRESSED_TOY, f"{split}-*")]
    feeder.compression = "GZIP"
  toy_config.train.epochs = 2
  results = train_and_evaluate(toy_config)
  assert set(results) == {"loss", "accuracy"}
  assert np.isfinite(results["loss"])


def test_remote_files_are_counted_by_reading(native_ops):
  # ram:// is TensorFlow's in-memory filesystem, standing in for gs://: no
  # local metadata can exist there, so the feeder counts by one pass.
  import tensorflow as tf

  with tf.io.TFRecordWriter(f"ram://deephub_test_{native_ops}/train-0") as writer:
    for record in tf.data.TFRecordDataset(os.path.join(toy_data_dir(), "train-00000-of-00001")):
      writer.write(record.numpy())
  feeder = toy_feeder(f"ram://deephub_test_{native_ops}/train-*")
  assert feeder.record_counts is None
  assert feeder.num_examples() == 10 and feeder.steps_per_epoch() == 3
  assert numbers(feeder) == list(range(10))

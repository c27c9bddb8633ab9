"""The toy variant reads the documented spec: `number` is the feature and the label, shape [1], int64.

Toy files made by the old framework hold only `number`; they must train. The
bundled toy data holds `number` and `label` (equal), so both specs read it.
"""

import os

import pytest
import tensorflow as tf

from deephub import variants
from deephub.io import make_feeder
from deephub.resources import toy_data_dir
from tests.cli_run import run_deep
from tests.conftest import read_scalars

NUMBER = {"type": "FixedLenFeature", "shape": [1], "dtype": "int64"}
# The spec deephub's toy used before: a separate scalar `label`.
OLD_DEEPHUB_SPEC = {
  "features_map": {"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
  "labels_map": {"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
}


def write_old_framework_toy_files(folder, count: int = 10) -> str:
  """Toy records as the old framework wrote them: one int64 `number` per example, nothing else."""
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, "train-00000-of-00001")
  with tf.io.TFRecordWriter(path) as writer:
    for i in range(count):
      feature = {"number": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))}
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
  return path


@pytest.mark.parametrize("variant", ["toy", "toy.yaml"])
def test_toy_reads_number_as_feature_and_label(variant):
  train = variants.load_variant(variant).train
  for feeder in (train.train_feeder, train.eval_feeder):
    assert feeder.features_map.to_dict() == {"number": NUMBER}
    assert feeder.labels_map.to_dict() == {"number": NUMBER}
  assert variants.load_variant(variant).model.num_classes == 100


@pytest.mark.parametrize("spec", ["documented", "old deephub"])
def test_bundled_toy_data_reads_with_both_specs(spec):
  config = variants.load_variant("toy").train.eval_feeder.to_dict()
  if spec == "old deephub":
    config.update(OLD_DEEPHUB_SPEC)
  feeder = make_feeder(config)
  feeder.check_schema("train.eval_feeder")
  features, labels = next(iter(feeder.dataset(epochs=1)))
  numbers = tf.reshape(features["number"], [-1]).numpy().tolist()
  assert numbers == list(range(10, 20))  # The validation split.
  assert tf.reshape(labels[next(iter(labels))], [-1]).numpy().tolist() == numbers


def test_old_framework_toy_files_train_through_deep(tmp_path):
  path = write_old_framework_toy_files(str(tmp_path / "old"))
  model_dir = str(tmp_path / "model")
  result = run_deep(
    "trainer", "train", "toy", "-p", "model.model_dir", model_dir,
    "-p", "train.train_feeder.file_patterns", path, "-p", "train.train_feeder.auto_generate_meta", "True",
    "-p", "train.eval_feeder.file_patterns", path, "-p", "train.eval_feeder.auto_generate_meta", "True",
  )  # fmt: skip
  assert result.returncode == 0, result.stderr[-3000:]
  assert os.path.isfile(os.path.join(model_dir, "model.ckpt-10.index"))
  assert read_scalars(os.path.join(model_dir, "eval"))["loss"][10] < 4.6  # Below ln(100): it learned.


def test_bundled_data_still_holds_both_names():
  record = next(iter(tf.data.TFRecordDataset(os.path.join(toy_data_dir(), "train-00000-of-00001"))))
  feature = tf.train.Example.FromString(record.numpy()).features.feature
  assert sorted(feature) == ["label", "number"]
  assert feature["label"].int64_list.value == feature["number"].int64_list.value

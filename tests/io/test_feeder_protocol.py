"""Every deephub feeder is a `deephub.io.feeder.Feeder` and takes the feeder config's defaults.

The Parquet case needs tensorflow-io (the io environment); the others run everywhere.
"""

import inspect

import numpy as np
import pytest
import tensorflow as tf

from deephub import defaults
from deephub.io import make_feeder
from deephub.io.feeder import Feeder
from deephub.io.memory import MemorySamplesFeeder
from deephub.io.parquet import ParquetExamplesFeeder
from deephub.io.tfrecord import TFRecordExamplesFeeder

NUMBERS = 40
SCALAR_INT = {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}


def tfrecord_feeder(tmp_path):
  """Two files holding the numbers 0..39 as feature `number` and label `label`."""
  for shard, numbers in enumerate((range(0, 25), range(25, NUMBERS))):
    with tf.io.TFRecordWriter(str(tmp_path / f"part-{shard}")) as writer:
      for n in numbers:
        value = tf.train.Feature(int64_list=tf.train.Int64List(value=[n]))
        feature = {"number": value, "label": value}
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
  config = defaults.feeder_config(
    file_patterns=[str(tmp_path / "part-*")], batch_size=4, features_map={"number": SCALAR_INT},
    labels_map={"label": SCALAR_INT}, auto_generate_meta=True,
  )  # fmt: skip
  return make_feeder(config)


def parquet_feeder(tmp_path):
  """The same numbers in two Parquet files (pyarrow is in the io environment only)."""
  import pyarrow as pa
  import pyarrow.parquet as pq

  for shard, numbers in enumerate((range(0, 25), range(25, NUMBERS))):
    table = pa.table({"number": pa.array(numbers, pa.int64()), "label": pa.array(numbers, pa.int64())})
    pq.write_table(table, str(tmp_path / f"part-{shard}.parquet"))
  config = defaults.feeder_config(
    type="ParquetExamplesFeeder", file_patterns=[str(tmp_path / "part-*.parquet")], batch_size=4,
    features_map={"number": SCALAR_INT}, labels_map={"label": SCALAR_INT},
  )  # fmt: skip
  return make_feeder(config)


def memory_feeder(tmp_path):
  del tmp_path
  return MemorySamplesFeeder({"number": np.arange(NUMBERS)}, {"label": np.arange(NUMBERS)}, batch_size=4)


FEEDERS = [
  pytest.param(tfrecord_feeder, id="tfrecord"),
  pytest.param(memory_feeder, id="memory"),
  pytest.param(parquet_feeder, id="parquet", marks=pytest.mark.io),
]


@pytest.mark.parametrize("build", FEEDERS)
def test_each_feeder_is_a_feeder(tmp_path, build):
  feeder = build(tmp_path)
  assert isinstance(feeder, Feeder)
  assert feeder.feature_names == ["number"] and feeder.label_names == ["label"]
  assert feeder.steps_per_epoch() == NUMBERS // 4
  batches = list(feeder.dataset(epochs=1))
  assert len(batches) == feeder.steps_per_epoch()
  assert sorted(np.concatenate([f["number"].numpy() for f, _ in batches]).tolist()) == list(range(NUMBERS))


@pytest.mark.parametrize("build", FEEDERS)
def test_dataset_takes_an_input_context(tmp_path, build):
  """Two input pipelines of two replicas each: per-replica batches, every example read once."""
  feeder = build(tmp_path)
  assert inspect.signature(feeder.dataset).parameters["input_context"].kind is inspect.Parameter.KEYWORD_ONLY
  seen = []
  for pipeline in range(2):
    context = tf.distribute.InputContext(
      num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2
    )
    for features, labels in feeder.dataset(epochs=1, input_context=context):
      assert features["number"].shape[0] <= 2  # batch_size 4 over 2 replicas.
      np.testing.assert_array_equal(features["number"], labels["label"])
      seen += features["number"].numpy().tolist()
  assert sorted(seen) == list(range(NUMBERS))


@pytest.mark.parametrize("feeder_class", [TFRecordExamplesFeeder, ParquetExamplesFeeder])
def test_keyword_defaults_are_the_config_defaults(feeder_class):
  """A feeder built in Python defaults as one built from `defaults.feeder_config()`."""
  config = defaults.feeder_config()
  parameters = inspect.signature(feeder_class).parameters
  compared = 0
  for name, parameter in parameters.items():
    if parameter.default is inspect.Parameter.empty or name not in config or name in ("type", "labels_map"):
      continue
    assert parameter.default == config[name], name
    compared += 1
  assert compared >= 9  # shuffle ... auto_generate_meta (ParquetExamplesFeeder: the same keys).

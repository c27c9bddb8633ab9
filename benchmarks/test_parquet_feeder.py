"""Throughput of ParquetExamplesFeeder beside TFRecordExamplesFeeder on the same rows.

Runs in the io environment (tensorflow 2.17 + tensorflow-io + pyarrow):
  python -m pytest benchmarks/test_parquet_feeder.py -m io --benchmark-columns=mean,stddev,rounds
Both feeders read the same 4 files x 25,000 rows (int64 `number`, float32
`value`, int64 `label`) in batches of 1,024; each timed call is one full pass,
reduced in the graph so every batch is produced. The first pass of each is a
warm-up (file cache, tracing). The printed ratio is Parquet / TFRecord
examples per second.
"""

import numpy as np
import pytest
import tensorflow as tf

from deephub.config import defaults
from deephub.io import make_feeder, metadata

pytestmark = pytest.mark.io

FILES, ROWS, BATCH = 4, 25_000, 1_024
COLUMNS = {
  "number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"},
  "value": {"type": "FixedLenFeature", "shape": [], "dtype": "float32"},
}
LABELS = {"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}


def _columns(shard: int) -> dict[str, np.ndarray]:
  numbers = np.arange(shard * ROWS, (shard + 1) * ROWS, dtype=np.int64)
  return {"number": numbers, "value": (numbers / 7).astype(np.float32), "label": numbers % 10}


def _write_tfrecord(path: str, columns: dict[str, np.ndarray]) -> None:
  with tf.io.TFRecordWriter(path) as writer:
    for number, value, label in zip(columns["number"], columns["value"], columns["label"], strict=True):
      feature = {
        "number": tf.train.Feature(int64_list=tf.train.Int64List(value=[number])),
        "value": tf.train.Feature(float_list=tf.train.FloatList(value=[value])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      }
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  # Imported here: the main environment lacks pyarrow but may collect benchmarks/.
  import pyarrow as pa
  import pyarrow.parquet as pq

  directory = tmp_path_factory.mktemp("feeders")
  for shard in range(FILES):
    columns = _columns(shard)
    _write_tfrecord(str(directory / f"train-{shard}.tfrecord"), columns)
    pq.write_table(pa.table(columns), str(directory / f"train-{shard}.parquet"))
  # The TFRecord feeder takes its record counts from the metadata.
  metadata.generate(metadata.list_data_files(str(directory / "*.tfrecord")))
  return directory


def _count(n, batch):
  features, _ = batch
  return n + tf.size(features["number"], out_type=tf.int64)


_rates = {}


@pytest.mark.parametrize(
  "kind, suffix", [("TFRecordExamplesFeeder", "tfrecord"), ("ParquetExamplesFeeder", "parquet")]
)
def test_feeder_throughput(benchmark, data_dir, kind, suffix):
  config = defaults.feeder_config(
    type=kind, file_patterns=[str(data_dir / f"train-*.{suffix}")], batch_size=BATCH,
    features_map=COLUMNS, labels_map=LABELS,
  )  # fmt: skip
  feeder = make_feeder(config)
  dataset = feeder.dataset(epochs=1)
  one_pass = tf.function(lambda: dataset.reduce(tf.constant(0, tf.int64), _count))
  assert int(one_pass()) == FILES * ROWS  # Warm-up and a check that every row arrives.
  benchmark.pedantic(lambda: int(one_pass()), rounds=5, iterations=1)
  _rates[kind] = FILES * ROWS / benchmark.stats.stats.mean
  benchmark.extra_info["examples_per_sec"] = round(_rates[kind])
  if len(_rates) == 2:
    ratio = _rates["ParquetExamplesFeeder"] / _rates["TFRecordExamplesFeeder"]
    print(f"\nexamples/s: TFRecord {_rates['TFRecordExamplesFeeder']:,.0f}, Parquet "
          f"{_rates['ParquetExamplesFeeder']:,.0f}, Parquet/TFRecord = {ratio:.2f}")  # fmt: skip
    benchmark.extra_info["parquet_over_tfrecord"] = round(ratio, 3)

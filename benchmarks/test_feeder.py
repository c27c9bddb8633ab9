"""Feeder throughput (examples/s): deephub against the Estimator-era pipeline and the raw read.

Each pipeline is consumed by `dataset.reduce`, which sums the batch sizes in
C++: no Python runs per element, and every record really passes through the
pipeline (the sum depends on each batch). A round is one full pass; the
untimed warm-up pass also fills the page cache, so all three read from memory.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import synthetic_data
from benchmarks.report import REPORT, record, store_ratios
from deephub.io import make_feeder
from deephub.io.features import parsing_spec

GROUP = "feeder"
BATCH_SIZE = 256


def deephub_feeder(files: list[str], batch_size: int, **overrides):
  """The deephub feeder over the synthetic files with the config defaults."""
  from deephub import defaults

  config = defaults.feeder_config(
    batch_size=batch_size,
    file_patterns=files,
    features_map=synthetic_data.features_map(),
    labels_map=synthetic_data.labels_map(),
    **overrides,
  )
  return make_feeder(config, where="benchmark feeder")


def estimator_era_dataset(files: list[str], batch_size: int) -> tf.data.Dataset:
  """The pipeline the Estimator-era framework built (re-stated from its description).

  TFRecordDataset over all files with num_parallel_reads=32, a per-example
  `parse_single_example` map on one parallel call per CPU, then batch and
  prefetch.
  """
  spec = {
    **parsing_spec(synthetic_data.features_map(), where="features_map"),
    **parsing_spec(synthetic_data.labels_map(), where="labels_map"),
  }

  def parse(record):
    example = tf.io.parse_single_example(record, spec)
    return {"number": example["number"], "dense": example["dense"]}, {"label": example["label"]}

  records = tf.data.TFRecordDataset(files, num_parallel_reads=32)
  examples = records.map(parse, num_parallel_calls=os.cpu_count())
  return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def raw_read_dataset(files: list[str], batch_size: int) -> tf.data.Dataset:
  """The read limit: the same interleaved file reads and batching, no parsing."""
  return (
    tf.data.Dataset.from_tensor_slices(files)
    .interleave(tf.data.TFRecordDataset, cycle_length=len(files), num_parallel_calls=tf.data.AUTOTUNE)
    .batch(batch_size)
    .prefetch(tf.data.AUTOTUNE)
  )


def count_examples(dataset: tf.data.Dataset) -> tf.Tensor:
  """Sums the batch sizes of a pass in C++ (batches of records or of parsed dicts)."""

  def add(total, batch):
    first = tf.nest.flatten(batch)[0]
    return total + tf.shape(first, out_type=tf.int64)[0]

  return dataset.reduce(tf.constant(0, tf.int64), add)


def _first_batch_matches_generator(files: list[str]) -> None:
  """The hand-written wire format parses to what the generator meant (spot check)."""
  features, labels = next(iter(deephub_feeder(files[:1], batch_size=4).dataset(epochs=1)))
  assert features["dense"].shape == (4, synthetic_data.DENSE_WIDTH)
  assert np.all((0 <= labels["label"].numpy()) & (labels["label"].numpy() < synthetic_data.NUM_CLASSES))
  assert np.all(np.isfinite(features["dense"].numpy())) and np.std(features["dense"].numpy()) > 0.1
  assert np.all(features["number"].numpy() >= 0)


@pytest.mark.parametrize("pipeline", ["raw_read", "estimator_era", "deephub"])
def test_feeder_throughput(benchmark, profile, dataset_files, pipeline):
  _first_batch_matches_generator(dataset_files)
  expected = profile.num_examples
  if pipeline == "raw_read":
    dataset = raw_read_dataset(dataset_files, BATCH_SIZE)
  elif pipeline == "estimator_era":
    # It is an order of magnitude slower: time a prefix of the records.
    expected = profile.legacy_examples
    dataset = estimator_era_dataset(dataset_files, BATCH_SIZE).take(-(-expected // BATCH_SIZE))
  else:
    dataset = deephub_feeder(dataset_files, BATCH_SIZE).dataset(epochs=1)

  # Traced once, in the warm-up round, so the timed rounds only run the pass.
  one_pass = tf.function(lambda: count_examples(dataset))
  count = benchmark.pedantic(lambda: int(one_pass()), rounds=profile.rounds, warmup_rounds=1, iterations=1)
  assert abs(count - expected) < BATCH_SIZE, f"{pipeline} yielded {count} examples, expected {expected}"
  rate = record(benchmark, group=GROUP, name=pipeline, work=count, unit="examples")
  benchmark.extra_info["batch_size"] = BATCH_SIZE
  if pipeline == "raw_read":
    megabytes = synthetic_data.read_bytes(dataset_files) / 1e6
    benchmark.extra_info["raw_read_MB_per_sec"] = megabytes * rate / count
  if pipeline == "deephub":
    store_ratios(
      benchmark,
      [
        REPORT.add_ratio(GROUP, "deephub", "estimator_era", target=10.0),
        REPORT.add_ratio(GROUP, "deephub", "raw_read", target=0.8),
      ],
    )

"""Feeder throughput (examples/s): deephub against the Estimator-era pipeline and the raw read.

Each pipeline is consumed by `dataset.reduce`, which sums the batch sizes in
C++: no Python runs per element, and every record really passes through the
pipeline (the sum depends on each batch). A round is one full pass; the
untimed warm-up pass also fills the page cache, so all three read from memory.
The sweep records each pipeline's rate; the ratios come from
`test_feeder_against_alternatives`, whose rounds are paired (see
`report.run_paired`).
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import synthetic_data
from benchmarks.report import REPORT, paired_ratio, record, run_paired, store_ratios
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


def _pass(files: list[str], pipeline: str, profile) -> tuple[object, int]:
  """Returns (a traced one-pass function returning the examples seen, examples expected)."""
  if pipeline == "raw_read":
    dataset, expected = raw_read_dataset(files, BATCH_SIZE), profile.num_examples
  elif pipeline == "estimator_era":
    # It is an order of magnitude slower: time a prefix of the records.
    expected = profile.legacy_examples
    dataset = estimator_era_dataset(files, BATCH_SIZE).take(-(-expected // BATCH_SIZE))
  else:
    dataset, expected = deephub_feeder(files, BATCH_SIZE).dataset(epochs=1), profile.num_examples
  one_pass = tf.function(lambda: count_examples(dataset))
  return (lambda: int(one_pass())), expected


@pytest.mark.parametrize("pipeline", ["raw_read", "estimator_era", "deephub"])
def test_feeder_throughput(benchmark, profile, dataset_files, pipeline):
  _first_batch_matches_generator(dataset_files)
  # Traced in the warm-up round, so the timed rounds only run the pass.
  one_pass, expected = _pass(dataset_files, pipeline, profile)
  count = benchmark.pedantic(one_pass, rounds=profile.rounds, warmup_rounds=1, iterations=1)
  assert abs(count - expected) < BATCH_SIZE, f"{pipeline} yielded {count} examples, expected {expected}"
  rate = record(benchmark, group=GROUP, name=pipeline, work=count, unit="examples")
  benchmark.extra_info["batch_size"] = BATCH_SIZE
  if pipeline == "raw_read":
    megabytes = synthetic_data.read_bytes(dataset_files) / 1e6
    benchmark.extra_info["raw_read_MB_per_sec"] = megabytes * rate / count


def test_feeder_against_alternatives(benchmark, profile, dataset_files):
  """deephub's feeder in rounds paired with the Estimator-era pipeline and the raw read."""
  ours, ours_work = _pass(dataset_files, "deephub", profile)
  alternatives = {name: _pass(dataset_files, name, profile) for name in ("estimator_era", "raw_read")}
  seconds = run_paired(
    benchmark, ours, {name: run for name, (run, _) in alternatives.items()}, rounds=profile.paired_rounds
  )
  benchmark.extra_info["examples_per_sec"] = ours_work / benchmark.stats.stats.min
  ratios = []
  for name, target in (("estimator_era", 10.0), ("raw_read", 0.8)):
    theirs_work = alternatives[name][1]
    benchmark.extra_info[f"{name}_examples_per_sec"] = theirs_work / min(seconds[name])
    value = paired_ratio(
      benchmark.stats.stats.data, seconds[name], ours_work=ours_work, theirs_work=theirs_work
    )
    ratios.append(REPORT.add_paired_ratio(GROUP, "deephub", name, value, target))
  store_ratios(benchmark, ratios)

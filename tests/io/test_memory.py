"""MemorySamplesFeeder over arrays, dicts, lists and DataFrames."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from deephub.errors import UserError
from deephub.io import FEEDERS
from deephub.io.memory import MemorySamplesFeeder


def collect(feeder, epochs=1):
  return list(feeder.dataset(epochs=epochs).as_numpy_iterator())


@pytest.mark.parametrize(
  "x, names",
  [
    (np.arange(10), ["0"]),
    (list(range(10)), ["0"]),
    (np.stack([np.arange(10), -np.arange(10)], axis=1), ["0", "1"]),
    ({"a": np.arange(10), "b": list(range(10))}, ["a", "b"]),
    ([{"a": i, "b": 2 * i} for i in range(10)], ["a", "b"]),
    (pd.DataFrame({"a": np.arange(10), "b": np.arange(10) * 2}), ["a", "b"]),
  ],
)
def test_inputs_become_named_columns(x, names):
  feeder = MemorySamplesFeeder(x, np.arange(100, 110), batch_size=4)
  assert feeder.feature_names == names and feeder.label_names == ["0"]
  batches = collect(feeder)
  assert [len(labels["0"]) for _, labels in batches] == [4, 4, 2]
  assert np.concatenate([features[names[0]] for features, _ in batches]).tolist() == list(range(10))
  assert feeder.steps_per_epoch() == 3


def test_multidimensional_dict_features_and_no_labels():
  feeder = MemorySamplesFeeder({"image": np.zeros((6, 3, 2))}, batch_size=4, drop_remainder=True)
  batches = collect(feeder, epochs=2)
  assert [b["image"].shape for b in batches] == [(4, 3, 2)] * 2  # Remainders dropped, never spanning passes.
  assert feeder.steps_per_epoch() == 1 and feeder.label_names == []


def test_shuffle_keeps_pairs_and_permutes():
  feeder = MemorySamplesFeeder(np.arange(50), np.arange(50) + 1000, batch_size=50, shuffle=True, seed=1)
  ((features, labels),) = collect(feeder)
  assert sorted(features["0"].tolist()) == list(range(50))
  assert features["0"].tolist() != list(range(50))
  np.testing.assert_array_equal(labels["0"], features["0"] + 1000)


def test_not_as_dict_yields_arrays():
  feeder = MemorySamplesFeeder(np.arange(4), np.arange(4) * 2, feed_as_dict=False, batch_size=2)
  assert [(x.tolist(), y.tolist()) for x, y in collect(feeder)] == [([0, 1], [0, 2]), ([2, 3], [4, 6])]


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"x": np.arange(10), "y": np.arange(9)}, r"x has 10 examples but y has 9"),
    ({"x": {"a": [1, 2], "b": [1]}, "y": None}, r"x columns differ in length: \{'a': 2, 'b': 1\}"),
    ({"x": {"a": [1]}, "y": [1], "feed_as_dict": False}, r"pass feed_as_dict=True"),
    ({"x": np.zeros((2, 2, 2)), "y": [1, 2]}, r"x is a 3-D array; pass a dict"),
    ({"x": [1], "y": [1], "batch_size": 0}, r"batch_size is 0"),
  ],
)
def test_errors(kwargs, message):
  with pytest.raises(UserError, match=message):
    MemorySamplesFeeder(**kwargs)


def test_registered_as_a_feeder():
  assert FEEDERS["MemorySamplesFeeder"] is MemorySamplesFeeder


def test_importable_from_deephub_io_and_a_feeder():
  from deephub.io import MemorySamplesFeeder as exported
  from deephub.io.feeder import Feeder

  assert exported is MemorySamplesFeeder
  assert isinstance(MemorySamplesFeeder(np.arange(4), np.arange(4)), Feeder)


@pytest.mark.parametrize(
  "batch_size, drop, epochs, expected", [(4, False, 3, 9), (4, True, 3, 6), (10, False, 1, 1)]
)
def test_total_steps_is_epochs_times_steps_per_epoch(batch_size, drop, epochs, expected):
  feeder = MemorySamplesFeeder(np.arange(10), np.arange(10), batch_size=batch_size, drop_remainder=drop)
  assert feeder.total_steps(epochs) == expected == epochs * feeder.steps_per_epoch()
  assert len(collect(feeder, epochs=epochs)) == expected  # Batches never span two passes.


def test_input_context_shards_examples_in_per_replica_batches():
  feeder = MemorySamplesFeeder(np.arange(12), np.arange(12), batch_size=4)
  shares = []
  for pipeline in range(2):
    context = tf.distribute.InputContext(
      num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2
    )
    batches = list(feeder.dataset(1, input_context=context).as_numpy_iterator())
    assert {len(features["0"]) for features, _ in batches} == {2}  # Global batch 4 over 2 replicas.
    shares.append(np.concatenate([features["0"] for features, _ in batches]).tolist())
  assert sorted(shares[0] + shares[1]) == list(range(12)) and not set(shares[0]) & set(shares[1])


def test_input_context_refuses_a_batch_that_does_not_split():
  feeder = MemorySamplesFeeder(np.arange(12), np.arange(12), batch_size=5)
  context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2)
  with pytest.raises(UserError, match=r"batch_size 5 is the global batch and must split evenly across 2"):
    feeder.dataset(1, input_context=context)

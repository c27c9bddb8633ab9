"""MemorySamplesFeeder over arrays, dicts, lists and DataFrames."""

import numpy as np
import pandas as pd
import pytest

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

"""serving_inputs: the configured features_map, or FixedLenFeatures read off the train feeder's batches."""

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine.serving_inputs import ServingInputs, from_feature_specs, serving_inputs
from deephub.errors import UserError
from deephub.io import MemorySamplesFeeder


@pytest.mark.parametrize(
  ("spec", "entry", "cast"),
  [
    (tf.TensorSpec([None], tf.float32), {"shape": [], "dtype": "float32"}, None),
    (tf.TensorSpec([None, 3], tf.float64), {"shape": [3], "dtype": "float32"}, tf.float64),
    (tf.TensorSpec([None, 2, 2], tf.float16), {"shape": [2, 2], "dtype": "float32"}, tf.float16),
    (tf.TensorSpec([None], tf.int64), {"shape": [], "dtype": "int64"}, None),
    (tf.TensorSpec([None, 4], tf.int32), {"shape": [4], "dtype": "int64"}, tf.int32),
    (tf.TensorSpec([None, 28, 28, 1], tf.uint8), {"shape": [28, 28, 1], "dtype": "int64"}, tf.uint8),
    (tf.TensorSpec([None], tf.bool), {"shape": [], "dtype": "int64"}, tf.bool),
    (tf.TensorSpec([None], tf.string), {"shape": [], "dtype": "string"}, None),
  ],
)
def test_feature_specs_become_fixed_len_features(spec, entry, cast):
  inputs = from_feature_specs({"x": spec})
  assert inputs.features_map == {"x": {"type": "FixedLenFeature", **entry}}
  assert inputs.dtypes == ({"x": cast} if cast is not None else {})


@pytest.mark.parametrize(
  ("spec", "problem"),
  [
    (tf.SparseTensorSpec([None, None], tf.int64), "has no fixed shape per example"),
    (tf.RaggedTensorSpec([None, None], tf.int64), "has no fixed shape per example"),
    (tf.TensorSpec([None, None], tf.float32), "has no fixed shape per example"),
    (tf.TensorSpec([None], tf.complex64), "is complex64, which no tf.Example feature holds"),
  ],
)
def test_features_a_tf_example_cannot_carry_name_the_key(spec, problem):
  error = rf"^train feeder feature 'x' {problem}.*; set train\.train_feeder\.features_map"
  with pytest.raises(UserError, match=error):
    from_feature_specs({"x": spec})


class _NoDataFeeder:
  """A feeder whose data must not be read: the configured features_map serves."""

  feature_names, label_names, batch_size = ["a", "b"], ["y"], 1

  def dataset(self, epochs=None, *, input_context=None):
    raise AssertionError("read the feeder although the features_map names its features")

  def steps_per_epoch(self):
    return 1


@pytest.mark.parametrize("extra", [{}, {"c": {"dtype": "string"}}])
def test_a_features_map_holding_the_feeders_features_is_kept(extra):
  features_map = {"b": {"shape": [], "dtype": "int64", "default_value": 0}, "a": {"dtype": "float32"}}
  features_map.update(extra)
  assert serving_inputs(features_map, _NoDataFeeder()) == ServingInputs(features_map)
  assert serving_inputs(features_map) == ServingInputs(features_map)  # No feeder: the config's.


@pytest.mark.parametrize(
  "features_map", [{}, {"number": {"shape": [1], "dtype": "int64"}}, {"pixels": {"dtype": "float32"}}]
)
def test_a_features_map_lacking_a_feeder_feature_gives_way_to_the_feeders(features_map):
  feeder = MemorySamplesFeeder({"pixels": np.zeros((4, 3)), "count": np.arange(4)}, {"y": np.arange(4)})
  inputs = serving_inputs(features_map, feeder)
  assert inputs.features_map == {
    "pixels": {"type": "FixedLenFeature", "shape": [3], "dtype": "float32"},
    "count": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"},
  }
  assert inputs.dtypes == {"pixels": tf.float64}


def test_no_features_and_no_feeder_names_the_key():
  error = r"^train\.train_feeder\.features_map is empty; .*export\(config, train_feeder=feeder\)\)$"
  with pytest.raises(UserError, match=error):
    serving_inputs({})

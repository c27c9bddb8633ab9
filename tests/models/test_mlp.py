"""MLPClassifier: input layout, initialisation, parameter errors, and a real training run."""

import numpy as np
import pytest
import tensorflow as tf

from deephub.config import variants
from deephub.engine import train_and_evaluate
from deephub.errors import UserError
from deephub.models import build_model
from tests.conftest import read_scalars


def _mlp(feature_names=("a",), **params):
  config = {"type": "mlp:MLPClassifier", "hidden_units": [8, 4], "num_classes": 3, "learning_rate": 0.01}
  config.update(params)
  return build_model(config, feature_names=list(feature_names), label_names=["y"])


def _specs(**shapes):
  return {name: tf.TensorSpec([None, *shape], dtype) for name, (shape, dtype) in shapes.items()}


@pytest.mark.parametrize(
  ("feature_names", "features", "expected"),
  [
    # Scalar int64 becomes one float column.
    (["n"], {"n": tf.constant([1, 2], tf.int64)}, [[1.0], [2.0]]),
    # Concatenated in feature order, not dict order; [2, 2] features are flattened.
    (
      ["b", "a"],
      {"a": tf.constant([[1.0], [2.0]]), "b": tf.constant([[[3, 4], [5, 6]], [[7, 8], [9, 10]]])},
      [[3, 4, 5, 6, 1], [7, 8, 9, 10, 2]],
    ),
  ],
)
def test_inputs_are_flattened_and_concatenated_in_feature_order(feature_names, features, expected):
  model = _mlp(feature_names)
  np.testing.assert_array_equal(model._inputs(features).numpy(), np.array(expected, np.float32))


def test_variables_are_named_glorot_initialised_and_sized_from_the_specs():
  model = _mlp(["a", "b"], hidden_units=[16, 8], num_classes=5)
  model.build(_specs(a=([], tf.int64), b=([3, 2], tf.float32)))
  variables = model.named_variables()
  assert {name: list(v.shape) for name, v in variables.items()} == {
    "mlp/dense_0/kernel": [7, 16],
    "mlp/dense_0/bias": [16],
    "mlp/dense_1/kernel": [16, 8],
    "mlp/dense_1/bias": [8],
    "mlp/logits/kernel": [8, 5],
    "mlp/logits/bias": [5],
  }
  for name, fan_in, fan_out in (("dense_0", 7, 16), ("dense_1", 16, 8), ("logits", 8, 5)):
    kernel = variables[f"mlp/{name}/kernel"].numpy()
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert np.all(np.abs(kernel) <= limit) and np.std(kernel) > limit / 4  # Glorot-uniform, not constant.
    np.testing.assert_array_equal(variables[f"mlp/{name}/bias"].numpy(), 0)


@pytest.mark.parametrize(
  ("dropout", "training", "same"), [(0.0, True, True), (0.5, False, True), (0.5, True, False)]
)
def test_dropout_only_while_training(dropout, training, same):
  model = _mlp(dropout=dropout, hidden_units=[256])
  model.build(_specs(a=([4], tf.float32)))
  x = {"a": tf.ones([8, 4])}
  first, second = (model(x, training=training)["logits"].numpy() for _ in range(2))
  assert np.allclose(first, second) == same


@pytest.mark.parametrize(
  ("params", "message"),
  [
    ({"hidden_units": []}, "model.hidden_units is []"),
    ({"hidden_units": [4, 0]}, "model.hidden_units is [4, 0]"),
    ({"dropout": 1.0}, "model.dropout is 1.0"),
    ({"activation": "rleu"}, "model.activation is 'rleu'"),
  ],
)
def test_bad_params_raise_user_errors(params, message):
  with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
    _mlp(**params)


def test_features_without_a_fixed_shape_are_refused():
  model = _mlp(["v"])
  with pytest.raises(UserError, match="features_map.v has no fixed shape"):
    model.build({"v": tf.SparseTensorSpec([None, None], tf.int64)})


def test_mlp_variant_learns_the_toy_train_set(tmp_path):
  config = variants.load_variant("mlp")
  config.model.model_dir = str(tmp_path / "model")
  train_and_evaluate(config)
  accuracy = read_scalars(config.model.model_dir)["training_accuracy"]
  assert accuracy[10] < 0.5  # Glorot start: far from the answer...
  assert accuracy[300] == 1.0  # ...and the 10 distinct records are memorised.
  reader = tf.train.load_checkpoint(config.model.model_dir)
  assert reader.get_variable_to_shape_map()["mlp/dense_0/kernel"] == [1, 64]
  assert "mlp/logits/kernel/Adam_1" in reader.get_variable_to_shape_map()

"""Model lookup and the DebugToyModel contract."""

import numpy as np
import pytest
import tensorflow as tf

from deephub.errors import UserError
from deephub.models import build_model, registry_names, resolve_model_class
from deephub.models.registry.toy import DebugToyModel

TOY = {"type": "toy:DebugToyModel", "model_dir": "/unused", "num_classes": 7, "learning_rate": 0.1,
       "hidden_neurons": 5}  # fmt: skip


def build(**overrides):
  return build_model({**TOY, **overrides}, feature_names=["number"], label_names=["label"])


def test_registry_lists_toy():
  assert "toy:DebugToyModel" in registry_names()
  assert resolve_model_class("toy:DebugToyModel") is DebugToyModel
  # The full module path works too.
  assert resolve_model_class("deephub.models.registry.toy:DebugToyModel") is DebugToyModel


@pytest.mark.parametrize(
  "type_name, message",
  [
    ("toy", "use 'file:Class'.*toy:DebugToyModel"),
    ("toyz:DebugToyModel", "no module 'deephub.models.registry.toyz'.*toy:DebugToyModel"),
    ("toy:ToyModel", "has no Model class 'ToyModel'.*toy:DebugToyModel"),
    ("no_such_package.models:Net", "no module 'no_such_package.models'"),
    ("toy:_ToyNetwork", "has no Model class"),
  ],
)
def test_wrong_type_lists_the_registry(type_name, message):
  with pytest.raises(UserError, match=message):
    resolve_model_class(type_name)


def test_unknown_and_missing_params():
  with pytest.raises(UserError, match="model.hiden_neurons is not a parameter.*'hidden_neurons'"):
    build(hiden_neurons=3)
  params = dict(TOY)
  del params["learning_rate"]
  with pytest.raises(UserError, match="model.learning_rate is required"):
    build_model(params, feature_names=["number"], label_names=["label"])


def test_toy_variables_and_initial_values():
  model = build()
  variables = model.named_variables()
  assert list(variables) == ["toy/w1", "toy/b1", "toy/w2", "toy/b2"]
  assert [tuple(v.shape) for v in variables.values()] == [(1, 5), (5,), (5, 7), (7,)]
  np.testing.assert_array_equal(variables["toy/w1"].numpy(), np.full((1, 5), 0.01, np.float32))
  np.testing.assert_array_equal(variables["toy/b2"].numpy(), np.zeros(7, np.float32))


def test_toy_forward_loss_metrics_and_predictions():
  model = build()
  features = {"number": tf.constant([0, 3], tf.int64)}
  labels = {"label": tf.constant([1, 2], tf.int64)}
  outputs = model(features, training=False)
  # hidden = relu(x * 0.01); logits = sum(hidden) * 0.01 for every class.
  expected_logit = 3 * 0.01 * 5 * 0.01
  np.testing.assert_allclose(outputs["logits"].numpy(), [[0.0] * 7, [expected_logit] * 7], rtol=1e-5)
  np.testing.assert_allclose(model.loss(labels, outputs).numpy(), [np.log(7)] * 2, rtol=1e-5)
  total, count = model.eval_metrics(labels, outputs)["accuracy"]
  assert (float(total), float(count)) == (0.0, 2.0)  # argmax of equal logits is class 0.
  predictions = model.predictions(outputs)
  assert predictions["classes"].numpy().tolist() == [0, 0]
  np.testing.assert_allclose(predictions["probabilities"].numpy().sum(axis=1), [1, 1], rtol=1e-6)


def test_toy_optimizer_is_tf1_adam():
  optimizer = build().optimizer()
  assert type(optimizer).__name__ == "Adam"
  assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.9, 0.999, 1e-8)
  assert float(optimizer.learning_rate) == pytest.approx(0.1)

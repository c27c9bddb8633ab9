"""MLPClassifier: a multi-layer perceptron over every feature of `features_map`.

The input is each feature cast to float32, flattened per example and
concatenated in `features_map` order. Weights are Glorot-uniform and biases
zero, so (unlike the toy model's constant start) hidden units differ and the
network can learn real data. Loss, optimizer, learning-rate schedules, summaries
and eval metrics are the `Classifier`'s: softmax cross-entropy, Adam with TF1
defaults, `training_accuracy` / `learning_rate` while training, `accuracy` in
eval.
"""

from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from deephub.errors import UserError
from deephub.models.base import Tensors
from deephub.models.classifier import Classifier

_ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "elu", "selu", "swish", "linear")


class _MLPNetwork(keras.layers.Layer):
  """Dense layers `mlp/dense_<i>` then `mlp/logits`; input width is set on first call."""

  def __init__(self, *, hidden_units: Sequence[int], num_classes: int, activation: str, dropout: float):
    # The layer name is the variable scope: weight paths become "mlp/dense_0/kernel".
    super().__init__(name="mlp")
    self.hidden = [
      keras.layers.Dense(units, activation=activation, name=f"dense_{i}")
      for i, units in enumerate(hidden_units)
    ]
    self.dropout = keras.layers.Dropout(dropout) if dropout > 0 else None
    self.logits = keras.layers.Dense(num_classes, name="logits")

  def build(self, input_shape):
    # Sub-layers built inside this build get paths under "mlp/".
    shape = input_shape
    for layer in self.hidden:
      layer.build(shape)
      shape = (*shape[:-1], layer.units)
    self.logits.build(shape)

  def call(self, x, training=False):
    for layer in self.hidden:
      x = layer(x)
      if self.dropout is not None:
        x = self.dropout(x, training=training)
    return self.logits(x)


class MLPClassifier(Classifier):
  """Concatenated features -> Dense(hidden_units, activation)... -> num_classes logits, Adam."""

  def __init__(
    self,
    *,
    hidden_units: Sequence[int],
    activation: str = "relu",
    dropout: float = 0.0,
    **params,
  ):
    """Args:
    hidden_units: width of each hidden layer, input side first.
    activation: Keras activation name of the hidden layers.
    dropout: rate of the dropout after each hidden layer while training; 0 disables.
    **params: the `Classifier` params (num_classes, learning_rate, the
      schedule) and the engine's `feature_names` / `label_names`.

    Raises:
      UserError: an empty or non-positive `hidden_units`, a bad `dropout`
        or an unknown `activation`.
    """
    super().__init__(**params)
    hidden_units = list(hidden_units)
    if not hidden_units or any(int(units) < 1 for units in hidden_units):
      raise UserError(f"model.hidden_units is {hidden_units}; give a list of positive widths, e.g. [64, 64]")
    if not 0.0 <= dropout < 1.0:
      raise UserError(f"model.dropout is {dropout}; set it in [0, 1)")
    if activation not in _ACTIVATIONS:
      raise UserError(f"model.activation is {activation!r}; use one of {', '.join(_ACTIVATIONS)}")
    self._network = _MLPNetwork(
      hidden_units=[int(units) for units in hidden_units],
      num_classes=self.num_classes,
      activation=activation,
      dropout=dropout,
    )

  def build(self, feature_specs: Mapping[str, tf.TensorSpec]) -> None:
    """Creates the variables for the input width the feature specs give.

    Raises:
      UserError: a feature without a fixed per-example shape.
    """
    width = sum(_width(name, feature_specs[name]) for name in self.feature_names)
    self._network.build((None, width))

  def _inputs(self, features: Tensors) -> tf.Tensor:
    """Every feature as float32, flattened per example, concatenated in features_map order."""
    columns = []
    for name in self.feature_names:
      value = tf.cast(features[name], tf.float32)
      columns.append(tf.reshape(value, [-1, _width(name, features[name])]))
    return tf.concat(columns, axis=-1)


def _width(name: str, feature) -> int:
  """Values per example of a batched feature (tensor or spec); needs a fixed shape."""
  if isinstance(feature, (tf.SparseTensor, tf.SparseTensorSpec)) or not feature.shape[1:].is_fully_defined():
    raise UserError(
      f"features_map.{name} has no fixed shape per example; MLPClassifier needs FixedLenFeature "
      "with a full shape"
    )
  return int(np.prod(feature.shape[1:], dtype=np.int64))

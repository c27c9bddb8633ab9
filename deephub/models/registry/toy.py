"""DebugToyModel: the smallest classifier, matching the Estimator-era toy model.

Its variables are named exactly as the TF1 model_fn named them
(`toy/w1`, `toy/b1`, `toy/w2`, `toy/b2`), so checkpoints move between this
model and an Estimator.
"""

import keras
import tensorflow as tf

from deephub.errors import UserError
from deephub.models.base import Tensors
from deephub.models.classifier import Classifier


class _ToyNetwork(keras.layers.Layer):
  """One relu hidden layer and a logits layer, weights initialised to 0.01."""

  def __init__(self, *, hidden_neurons: int, num_classes: int):
    # The layer name is the variable scope: weight paths become "toy/w1".
    super().__init__(name="toy")
    self.w1 = self.add_weight(
      name="w1", shape=(1, hidden_neurons), initializer=keras.initializers.Constant(0.01)
    )
    self.b1 = self.add_weight(name="b1", shape=(hidden_neurons,), initializer="zeros")
    self.w2 = self.add_weight(
      name="w2", shape=(hidden_neurons, num_classes), initializer=keras.initializers.Constant(0.01)
    )
    self.b2 = self.add_weight(name="b2", shape=(num_classes,), initializer="zeros")

  def call(self, x):
    hidden = tf.nn.relu(tf.matmul(x, self.w1) + self.b1)
    return tf.matmul(hidden, self.w2) + self.b2


class DebugToyModel(Classifier):
  """First feature -> relu(hidden_neurons) -> num_classes logits, Adam."""

  def __init__(self, *, hidden_neurons: int, staircase: bool = True, **params):
    """Args:
    hidden_neurons: width of the hidden layer.
    staircase: an exponential decay drops every `num_steps_per_decay` steps
      instead of decaying smoothly. True by default here, unlike the other
      classifiers: the Estimator-era toy model hard-coded it, so its
      variants decay the same way here.
    **params: the `Classifier` params (num_classes, learning_rate, the
      schedule) and the engine's `feature_names` / `label_names`.

    Raises:
      UserError: `hidden_neurons` below 1 (Keras would refuse the shape with a traceback).
    """
    if hidden_neurons < 1:
      raise UserError(f"model.hidden_neurons is {hidden_neurons}; set it to 1 or more")
    super().__init__(staircase=staircase, **params)
    self._network = _ToyNetwork(hidden_neurons=hidden_neurons, num_classes=self.num_classes)

  def _inputs(self, features: Tensors) -> tf.Tensor:
    """The first feature as one float32 column."""
    return tf.reshape(tf.cast(features[self.feature_names[0]], tf.float32), [-1, 1])

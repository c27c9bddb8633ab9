"""DebugToyModel: the smallest classifier, matching the Estimator-era toy model.

Its variables are named exactly as the TF1 model_fn named them
(`toy/w1`, `toy/b1`, `toy/w2`, `toy/b2`), so checkpoints move between this
model and an Estimator.
"""

import keras
import tensorflow as tf

from deephub.models import schedules
from deephub.models.base import Model, Tensors


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


class DebugToyModel(Model):
  """First feature -> relu(hidden_neurons) -> num_classes logits, Adam."""

  def __init__(
    self,
    *,
    num_classes: int,
    learning_rate: float,
    hidden_neurons: int,
    num_steps_per_decay: int | None = None,
    learning_rate_decay_factor: float | None = None,
    staircase: bool = False,
    piecewise_lr_boundaries: list[int] | None = None,
    piecewise_lr_values: list[float] | None = None,
    min_lr: float | None = None,
    max_lr: float | None = None,
    cycle_size_steps: int | None = None,
    **names,
  ):
    """Args:
    num_classes: number of logits.
    learning_rate: Adam learning rate (the start of an exponential decay).
    hidden_neurons: width of the hidden layer.
    num_steps_per_decay ... cycle_size_steps: an optional learning-rate
      schedule (see `deephub.models.schedules`); none keeps it constant.
    **names: `feature_names` / `label_names`, passed by the engine.
    """
    super().__init__(**names)
    self.learning_rate = schedules.learning_rate_schedule(
      learning_rate,
      num_steps_per_decay=num_steps_per_decay,
      learning_rate_decay_factor=learning_rate_decay_factor,
      staircase=staircase,
      piecewise_lr_boundaries=piecewise_lr_boundaries,
      piecewise_lr_values=piecewise_lr_values,
      min_lr=min_lr,
      max_lr=max_lr,
      cycle_size_steps=cycle_size_steps,
    )
    self._network = _ToyNetwork(hidden_neurons=hidden_neurons, num_classes=num_classes)

  @property
  def network(self):
    return self._network

  def __call__(self, features: Tensors, *, training: bool):
    del training  # No dropout or batch norm.
    x = tf.reshape(tf.cast(features[self.feature_names[0]], tf.float32), [-1, 1])
    return {"logits": self._network(x)}

  def loss(self, labels: Tensors, outputs: Tensors):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.reshape(labels[self.label_names[0]], [-1]), logits=outputs["logits"]
    )

  def optimizer(self):
    # TF1's AdamOptimizer defaults; Keras would use epsilon 1e-7.
    return keras.optimizers.Adam(self.learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)

  def train_summaries(self, labels, outputs, optimizer):
    return {
      "training_accuracy": _accuracy(labels[self.label_names[0]], outputs["logits"]),
      "learning_rate": schedules.applied_learning_rate(self.learning_rate, optimizer),
    }

  def eval_metrics(self, labels, outputs):
    correct = _correct(labels[self.label_names[0]], outputs["logits"])
    return {"accuracy": (tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32))}

  def predictions(self, outputs):
    logits = outputs["logits"]
    return {"classes": tf.argmax(logits, axis=-1), "probabilities": tf.nn.softmax(logits)}


def _correct(labels, logits):
  predicted = tf.argmax(logits, axis=-1, output_type=tf.int64)
  return tf.cast(tf.equal(tf.reshape(tf.cast(labels, tf.int64), [-1]), predicted), tf.float32)


def _accuracy(labels, logits):
  return tf.reduce_mean(_correct(labels, logits))

"""Classifier: what every shipped softmax classifier shares, so a model only defines its network.

A subclass builds `self._network` (a Keras layer whose name is the variable
scope of the checkpoint keys, e.g. `toy/w1`) and says how the features become
its input (`_inputs`). The rest is here, once: softmax cross-entropy on the
first label, Adam with TF1's defaults, the learning-rate schedules of
`deephub.models.schedules`, `training_accuracy` / `learning_rate` while
training, `accuracy` in eval, and `classes` / `probabilities` for serving.
"""

import abc

import keras
import tensorflow as tf

from deephub.errors import UserError
from deephub.models import schedules
from deephub.models.base import Model, Tensors


class Classifier(Model):
  """Features -> `_network` -> `num_classes` logits; Adam on an optional learning-rate schedule."""

  # Set by the subclass's `__init__`: the layer holding every variable.
  _network: keras.layers.Layer

  def __init__(
    self,
    *,
    num_classes: int,
    learning_rate: float,
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
    learning_rate: Adam learning rate (the start of a schedule, if one is set).
    num_steps_per_decay ... cycle_size_steps: an optional learning-rate
      schedule (see `deephub.models.schedules`); none keeps it constant.
    **names: `feature_names` / `label_names`, passed by the engine.

    Raises:
      UserError: `num_classes` below 1, or schedule params that do not make one schedule.
    """
    super().__init__(**names)
    if num_classes < 1:
      raise UserError(f"model.num_classes is {num_classes}; set it to the number of classes (1 or more)")
    self.num_classes = num_classes
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

  @property
  def network(self) -> keras.layers.Layer:
    return self._network

  @abc.abstractmethod
  def _inputs(self, features: Tensors) -> tf.Tensor:
    """The network's input batch, made from the feature dict."""

  def __call__(self, features: Tensors, *, training: bool) -> dict[str, tf.Tensor]:
    # Keras drops `training` for a network whose `call` does not take it.
    return {"logits": self._network(self._inputs(features), training=training)}

  def loss(self, labels: Tensors, outputs: Tensors) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.reshape(labels[self.label_names[0]], [-1]), logits=outputs["logits"]
    )

  def optimizer(self) -> keras.optimizers.Optimizer:
    # TF1's AdamOptimizer defaults; Keras would use epsilon 1e-7.
    return keras.optimizers.Adam(self.learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)

  def train_summaries(self, labels, outputs, optimizer):
    return {
      "training_accuracy": tf.reduce_mean(_correct(labels[self.label_names[0]], outputs["logits"])),
      "learning_rate": schedules.applied_learning_rate(self.learning_rate, optimizer),
    }

  def eval_metrics(self, labels, outputs):
    correct = _correct(labels[self.label_names[0]], outputs["logits"])
    return {"accuracy": (tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32))}

  def predictions(self, outputs):
    logits = outputs["logits"]
    return {"classes": tf.argmax(logits, axis=-1), "probabilities": tf.nn.softmax(logits)}


def _correct(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
  """1.0 where the argmax of the logits is the label, else 0.0; shape [batch]."""
  predicted = tf.argmax(logits, axis=-1, output_type=tf.int64)
  return tf.cast(tf.equal(tf.reshape(tf.cast(labels, tf.int64), [-1]), predicted), tf.float32)

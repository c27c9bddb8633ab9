"""The compiled parts of the engine: the inner train loop and the eval pass.

Everything here runs as TensorFlow graphs. The host (loop.py) calls
`train_loop(iterator, num_steps)` once per `steps_per_loop` steps; the step
count is a tensor, so a shorter last loop does not retrace.
"""

from collections.abc import Callable

import keras
import tensorflow as tf

from deephub.models.base import Model

# Per-step flag in the loop's logs: 1 when the loss and every gradient are finite.
FINITE_KEY = "_finite"


def make_train_loop(
  model: Model, optimizer: keras.optimizers.Optimizer, global_step: tf.Variable, *, xla: bool
) -> Callable:
  """Returns `train_loop(iterator, num_steps) -> {name: float32[num_steps]}`.

  The result holds the loss and the model's training summaries of every
  step, so the host can write per-step summaries after the loop without a
  sync point inside it.
  """
  variables = model.trainable_variables

  @tf.function(jit_compile=xla)
  def train_step(features, labels):
    with tf.GradientTape() as tape:
      outputs = model(features, training=True)
      loss = tf.reduce_mean(model.loss(labels, outputs))
    gradients = tape.gradient(loss, variables)
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in [loss, *gradients]])
    optimizer.apply_gradients(zip(gradients, variables, strict=True))
    global_step.assign_add(1)
    logs = {"loss": loss, FINITE_KEY: finite, **model.train_summaries(labels, outputs, optimizer)}
    return {name: tf.cast(value, tf.float32) for name, value in logs.items()}

  @tf.function
  def train_loop(iterator, num_steps):
    # The first step runs outside the loop so the summary names are known
    # when the per-step arrays are created.
    logs = train_step(*next(iterator))
    arrays = {
      name: tf.TensorArray(tf.float32, size=num_steps).write(0, value) for name, value in logs.items()
    }
    for i in tf.range(1, num_steps):
      logs = train_step(*next(iterator))
      arrays = {name: arrays[name].write(i, logs[name]) for name in arrays}
    return {name: array.stack() for name, array in arrays.items()}

  return train_loop


def make_evaluate(model: Model) -> Callable:
  """Returns `evaluate(dataset) -> {name: mean over the pass}` (loss + eval metrics).

  The pass is a `dataset.reduce`, so the sums stay in the graph until the end.
  """

  def batch_sums(features, labels):
    outputs = model(features, training=False)
    losses = model.loss(labels, outputs)
    sums = {"loss": (tf.reduce_sum(losses), tf.cast(tf.size(losses), tf.float32))}
    sums.update(model.eval_metrics(labels, outputs))
    return {
      name: (tf.cast(total, tf.float32), tf.cast(count, tf.float32)) for name, (total, count) in sums.items()
    }

  @tf.function
  def evaluate(dataset):
    names = tf.function(batch_sums).get_concrete_function(*dataset.element_spec).structured_outputs
    initial = {name: (tf.constant(0.0), tf.constant(0.0)) for name in names}

    def add(totals, batch):
      sums = batch_sums(*batch)
      return {name: (totals[name][0] + sums[name][0], totals[name][1] + sums[name][1]) for name in totals}

    totals = dataset.reduce(initial, add)
    return {name: total / tf.maximum(count, 1.0) for name, (total, count) in totals.items()}

  return evaluate

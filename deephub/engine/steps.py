"""The compiled parts of the engine: the inner train loop and the eval pass.

Everything here runs as TensorFlow graphs. The host (loop.py) calls
`train_loop(iterator, num_steps)` once per `steps_per_loop` steps; the step
count is a tensor, so a shorter last loop does not retrace. Each train step
runs on every replica of the strategy (`strategy.run`) over the distributed
iterator; with one device that is a single replica and nothing changes.
"""

from collections.abc import Callable

import keras
import tensorflow as tf

from deephub.engine.precision import float32_outputs
from deephub.models.base import Model

# Per-step flag in the loop's logs: 1 when the loss and every gradient are finite.
FINITE_KEY = "_finite"


def make_train_loop(
  model: Model,
  optimizer: keras.optimizers.Optimizer,
  global_step: tf.Variable,
  *,
  xla: bool,
  strategy: tf.distribute.Strategy,
) -> Callable:
  """Returns `train_loop(iterator, num_steps) -> {name: float32[num_steps]}`.

  The result holds the loss and the model's training summaries of every
  step, so the host can write per-step summaries after the loop without a
  sync point inside it. Values are over the global batch: the loss is the
  mean over all replicas' examples, other summaries the mean over replicas.

  Args:
    model: the model, its variables created under `strategy.scope()`.
    optimizer: built under `strategy.scope()`; it sums gradients over replicas.
    global_step: incremented once per step.
    xla: compile the per-replica step with XLA.
    strategy: the strategy whose replicas run the step; `iterator` must
      come from its `distribute_datasets_from_function`.
  """
  variables = model.trainable_variables
  replicas = strategy.num_replicas_in_sync
  # A loss-scaling optimizer skips steps with non-finite (scaled) gradients by
  # design, so only its loss is checked.
  check_gradients = not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

  @tf.function(jit_compile=xla)
  def train_step(features, labels):
    with tf.GradientTape() as tape:
      outputs = float32_outputs(model(features, training=True))
      losses = model.loss(labels, outputs)
      # The optimizer sums gradients over replicas, so each replica's loss is
      # its share of the global mean: its sum over the global example count.
      # Counting (one scalar all-reduce) keeps a short last batch exact.
      count = tf.cast(tf.size(losses), tf.float32)
      if replicas > 1:
        count = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, count)
      loss = tf.reduce_sum(losses) / count
      scaled_loss = optimizer.scale_loss(loss)  # Loss scaling under mixed_float16.
    gradients = tape.gradient(scaled_loss, variables)
    checked = [loss, *gradients] if check_gradients else [loss]
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in checked])
    optimizer.apply_gradients(zip(gradients, variables, strict=True))
    logs = {"loss": loss, FINITE_KEY: finite, **model.train_summaries(labels, outputs, optimizer)}
    return {name: tf.cast(value, tf.float32) for name, value in logs.items()}

  def distributed_step(iterator):
    per_replica = strategy.run(train_step, args=next(iterator))
    global_step.assign_add(1)
    return {
      # Replica losses are shares of the global mean: they add up to it.
      name: strategy.reduce(
        tf.distribute.ReduceOp.SUM if name == "loss" else tf.distribute.ReduceOp.MEAN, value, axis=None
      )
      for name, value in per_replica.items()
    }

  @tf.function
  def train_loop(iterator, num_steps):
    # The first step runs outside the loop so the summary names are known
    # when the per-step arrays are created.
    logs = distributed_step(iterator)
    arrays = {
      name: tf.TensorArray(tf.float32, size=num_steps).write(0, value) for name, value in logs.items()
    }
    for i in tf.range(1, num_steps):
      logs = distributed_step(iterator)
      arrays = {name: arrays[name].write(i, logs[name]) for name in arrays}
    return {name: array.stack() for name, array in arrays.items()}

  return train_loop


def make_evaluate(model: Model) -> Callable:
  """Returns `evaluate(dataset) -> {name: mean over the pass}` (loss + eval metrics).

  The pass is a `dataset.reduce`, so the sums stay in the graph until the end.
  """

  def batch_sums(features, labels):
    outputs = float32_outputs(model(features, training=False))
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

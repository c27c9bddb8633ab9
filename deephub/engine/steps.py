"""The compiled parts of the engine: the inner train loop and the eval pass.

Everything here runs as TensorFlow graphs. The host (controller.py) calls
`train_loop(iterator, num_steps)` once per `steps_per_loop` steps; the step
count is a tensor, so a shorter last loop does not retrace. Each train step
runs on every replica of the strategy (`strategy.run`) over the distributed
iterator; with one device that is a single replica and nothing changes.
"""

import functools
from collections.abc import Callable

import keras
import tensorflow as tf

from deephub.engine.precision import float32_outputs
from deephub.errors import UserError
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
  summary_steps: int = 1,
  autograph: bool = False,
) -> Callable:
  """Returns `train_loop(iterator, num_steps) -> {name: float32[num_steps]}`.

  The result holds the loss of every step and the model's training
  summaries of the steps they are written at, so the host can write them
  after the loop without a sync point inside it. Values are over the global
  batch: the loss is the mean over all replicas' examples, other summaries
  the mean over replicas.

  The summaries are computed only on steps that are multiples of
  `summary_steps` and are NaN on the others, as an Estimator computed them
  only on the steps its summary hook fetched them. Nothing else reads them,
  and a small model's step spends much of its time on them otherwise: the
  argmax of the toy model's accuracy took a quarter of its batch-256 step
  (see benchmarks/README.md).

  Args:
    model: the model, its variables created under `strategy.scope()`.
    optimizer: built under `strategy.scope()`; it sums gradients over replicas.
    global_step: incremented once per step.
    xla: compile the per-replica step with XLA.
    strategy: the strategy whose replicas run the step; `iterator` must
      come from its `distribute_datasets_from_function`.
    summary_steps: compute the training summaries every this many steps
      (`train.save_summary_steps`).
    autograph: AutoGraph-convert the model's code in the step
      (`runtime.autograph`). The engine's own code needs no conversion.
  """
  variables = model.trainable_variables
  replicas = strategy.num_replicas_in_sync
  # A loss-scaling optimizer skips steps with non-finite (scaled) gradients by
  # design, so only its loss is checked.
  check_gradients = not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

  @tf.function(jit_compile=xla, autograph=autograph)
  def train_step(features, labels, summarise):
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
    summaries = _when(summarise, lambda: model.train_summaries(labels, outputs, optimizer))
    logs = {"loss": loss, FINITE_KEY: finite, **summaries}
    return {name: tf.cast(value, tf.float32) for name, value in logs.items()}

  def distributed_step(iterator):
    # The step being run is global_step + 1 (the host writes it under that number).
    summarise = True if summary_steps == 1 else tf.equal((global_step + 1) % summary_steps, 0)
    per_replica = strategy.run(train_step, args=(*next(iterator), summarise))
    global_step.assign_add(1)
    return {
      # Replica losses are shares of the global mean: they add up to it.
      name: strategy.reduce(
        tf.distribute.ReduceOp.SUM if name == "loss" else tf.distribute.ReduceOp.MEAN, value, axis=None
      )
      for name, value in per_replica.items()
    }

  # An explicit while_loop, not AutoGraph: converting this file's functions
  # cost about a second of the first step, and steady state is the same graph.
  @tf.function(autograph=False)
  def train_loop(iterator, num_steps):
    # The first step runs outside the loop so the summary names are known
    # when the per-step arrays are created.
    logs = distributed_step(iterator)
    arrays = {
      name: tf.TensorArray(tf.float32, size=num_steps).write(0, value) for name, value in logs.items()
    }

    def step(i, arrays):
      logs = distributed_step(iterator)
      return i + 1, {name: arrays[name].write(i, logs[name]) for name in arrays}

    _, arrays = tf.while_loop(lambda i, _: i < num_steps, step, (tf.constant(1, num_steps.dtype), arrays))
    return {name: array.stack() for name, array in arrays.items()}

  return train_loop


def _when(condition: tf.Tensor, scalars_fn: Callable[[], dict]) -> dict[str, tf.Tensor]:
  """`scalars_fn()` (a dict of scalars) where `condition` holds, else the same names as float32 NaN."""
  if tf.get_static_value(condition):
    return scalars_fn()
  names = []

  def computed():
    scalars = {name: tf.cast(value, tf.float32) for name, value in scalars_fn().items()}
    names.extend(scalars)
    return scalars

  def skipped():
    # tf.cond traces the true branch first, so the names are known here.
    return {name: tf.constant(float("nan")) for name in names}

  scalars = tf.cond(condition, computed, skipped)
  return scalars if names else {}  # A cond with no outputs returns an op.


def make_evaluate(model: Model, *, batches_per_call: int = 100) -> Callable:
  """Returns `evaluate(dataset, should_stop=None) -> {name: mean over the pass}` (loss + eval metrics).

  The pass runs `batches_per_call` batches per compiled call, like the train
  loop, and asks `should_stop()` between calls, so SIGTERM stops a long
  evaluation without a sync point inside it. The running sums are tensors
  handed from call to call, so they add up in the same order as one pass would.
  `evaluate` returns None when `should_stop()` ended the pass early.

  Args:
    model: the model to evaluate.
    batches_per_call: batches per compiled call (`train.steps_per_loop`).
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
  def eval_chunk(iterator, totals, num_batches):
    exhausted = tf.constant(False)
    for _ in tf.range(num_batches):
      batch = iterator.get_next_as_optional()
      if not batch.has_value():
        exhausted = tf.constant(True)
        break
      sums = batch_sums(*batch.get_value())
      totals = {name: (totals[name][0] + sums[name][0], totals[name][1] + sums[name][1]) for name in totals}
    return totals, exhausted

  return _Evaluate(batch_sums, eval_chunk, batches_per_call)


class _Evaluate:
  """`evaluate(dataset, should_stop=None)`: chunks of compiled batches, `should_stop()` between them."""

  def __init__(self, batch_sums: Callable, chunk: Callable, batches_per_call: int):
    self._batch_sums = batch_sums
    # chunk(iterator, totals, num_batches) -> (totals, exhausted); a tf.function.
    self.chunk = chunk
    self._batches_per_call = tf.constant(batches_per_call)
    self._names: list[str] = []  # The metric names, known once batch_sums was traced.

  def zeros(self, element_spec) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
    """The running (total, count) of each metric before the first batch."""
    if not self._names:
      self._names.extend(
        tf.function(self._batch_sums).get_concrete_function(*element_spec).structured_outputs
      )
    return {name: (tf.constant(0.0), tf.constant(0.0)) for name in self._names}

  def __call__(self, dataset: tf.data.Dataset, should_stop: Callable[[], bool] | None = None):
    totals = self.zeros(dataset.element_spec)
    iterator = iter(dataset)
    while True:
      if should_stop is not None and should_stop():
        return None
      totals, exhausted = self.chunk(iterator, totals, self._batches_per_call)
      if exhausted:  # Sync point, once per chunk.
        break
    return {name: total / tf.maximum(count, 1.0) for name, (total, count) in totals.items()}


def explain_python_control_flow(train_loop: Callable, *, model_type: str, autograph: bool) -> Callable:
  """Wraps `train_loop` so that tracing a Python `if`/`for` on a tensor, without AutoGraph, names its fix.

  Raises (from the wrapped call):
    UserError: the model branches or loops in Python on a tensor and
      `runtime.autograph` is off.
  """

  @functools.wraps(train_loop)
  def wrapped(iterator, num_steps):
    try:
      return train_loop(iterator, num_steps)
    except tf.errors.OperatorNotAllowedInGraphError as error:
      if autograph:
        raise
      what = " ".join(str(error).split()).split(". ")[0]
      raise UserError(
        f"model {model_type} branches or loops in Python on a tensor ({what}); set "
        "runtime.autograph: True (--config.runtime.autograph=True) so the step converts that code"
      ) from None

  return wrapped

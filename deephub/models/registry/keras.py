"""KerasModel: bring your own Keras model, as the old framework's `KerasModel` took one.

    model:
      type: 'keras:KerasModel'
      builder: 'my_package.nets:build'   # returns an uncompiled keras.Model
      loss: sparse_categorical_crossentropy   # or 'my_package.losses:fn'
      optimizer: adam                    # adam or sgd
      learning_rate: 0.001
      metrics: [accuracy]                # reported at evaluation
      label: label                       # the label the loss reads

The builder is called with no arguments and returns a functional model (or a
Sequential that starts with `keras.Input`), so its variables exist before any
data is seen. A model whose input is a dict of `keras.Input`s keyed by
feature name gets those features; a model with one plain input gets the only
feature of `features_map`. It has one output, served as `predictions`.
Compile settings are not used: the loss, optimizer and metrics come from the
config, and the engine runs the step itself (compiled, XLA when enabled).

Checkpoint keys are the Keras variable paths (`hidden/kernel`,
`sequential/dense/kernel`). Keras numbers unnamed layers per process
(`dense`, `dense_1`, ...), so the builder runs with fresh numbering: the same
builder gives the same keys in every process, in training and in the
evaluate / export / predict modes that restore them.
"""

import contextlib
from collections.abc import Callable, Iterator, Sequence

import keras
import tensorflow as tf
from keras.src.backend.common import global_state

from deephub.errors import UserError
from deephub.models import keras_functions
from deephub.models.base import Model, Tensors

# Optimizers whose slots the engine saves under TF1 names (engine/checkpoint.py),
# with the Keras defaults compile('adam') would use.
OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
# The one output of the Keras model, as the loss, metrics and serving see it.
OUTPUT = "predictions"
# Keras' per-process counters of automatic layer names (`dense_3`).
_NAME_COUNTERS = "object_name_uids"


class KerasModel(Model):
  """A user's Keras model under deephub's loop: loss, optimizer and metrics from the config."""

  def __init__(
    self,
    *,
    builder: str | Callable[[], keras.Model],
    loss: str,
    learning_rate: float,
    optimizer: str = "adam",
    metrics: Sequence[str] = (),
    label: str | None = None,
    **names,
  ):
    """Args:
    builder: 'package.module:function' returning an uncompiled keras.Model
      that takes the feature dict (a subclass may pass the function itself).
    loss: a Keras loss function name or 'package.module:function'
      `(labels, predictions) -> per-example loss`.
    learning_rate: the optimizer's learning rate.
    optimizer: `adam` or `sgd` (Keras defaults otherwise).
    metrics: Keras metric function names (`accuracy`, `mae`, ...) or
      'package.module:function', each reported at evaluation as its mean.
    label: the label the loss and metrics read; default the first of `labels_map`.
    **names: `feature_names` / `label_names`, passed by the engine.

    Raises:
      UserError: naming the `model.*` key whose value does not resolve, or a
        builder result the engine cannot train.
    """
    super().__init__(**names)
    where = f"model.builder {builder!r}" if isinstance(builder, str) else type(self).__name__
    if isinstance(builder, str):
      builder = keras_functions.import_function(builder, key="model.builder")
    self._loss = keras_functions.loss_function(loss)
    if not isinstance(metrics, (list, tuple)):
      raise UserError(f"model.metrics is {metrics!r}; give a list of Keras metric names, e.g. [accuracy]")
    self._metrics = {str(name): keras_functions.metric_function(name) for name in metrics}
    if str(optimizer).lower() not in OPTIMIZERS:
      raise UserError(
        f"model.optimizer is {optimizer!r}; use one of {', '.join(OPTIMIZERS)} (the optimizers whose "
        "state deephub checkpoints under Estimator names)"
      )
    self._optimizer_class = OPTIMIZERS[str(optimizer).lower()]
    self.learning_rate = float(learning_rate)
    self.label = self.label_names[0] if label is None and self.label_names else label
    if self.label_names and self.label not in self.label_names:
      raise UserError(f"model.label is {label!r}; use one of labels_map: {', '.join(self.label_names)}")
    with _fresh_layer_names():
      network = builder()
    self._network = _checked_network(network, self.feature_names, where=where)
    # The features a dict-input model takes, by name; None: the one feature as a tensor.
    self._input_names = _dict_input_names(network)

  @property
  def network(self) -> keras.Model:
    return self._network

  def __call__(self, features: Tensors, *, training: bool) -> dict[str, tf.Tensor]:
    if self._input_names is not None:
      inputs = {name: features[name] for name in self._input_names}
    else:
      inputs = features[self.feature_names[0]]
    return {OUTPUT: self._network(inputs, training=training)}

  def _labels_and_predictions(self, labels: Tensors, outputs: Tensors) -> tuple[tf.Tensor, tf.Tensor]:
    predictions = outputs[OUTPUT]
    # Keras losses read labels in the prediction dtype (float32 here).
    return tf.cast(labels[self.label], predictions.dtype), predictions

  def loss(self, labels: Tensors, outputs: Tensors) -> tf.Tensor:
    return keras_functions.per_example(
      self._loss(*keras_functions.same_rank(*self._labels_and_predictions(labels, outputs)))
    )

  def optimizer(self) -> keras.optimizers.Optimizer:
    return self._optimizer_class(learning_rate=self.learning_rate)

  def eval_metrics(self, labels: Tensors, outputs: Tensors) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
    label, predictions = self._labels_and_predictions(labels, outputs)
    sums = {}
    for name, function in self._metrics.items():
      if function == keras_functions.ACCURACY:
        function = keras_functions.accuracy_function(label, predictions)
      values = tf.cast(
        keras_functions.per_example(function(*keras_functions.same_rank(label, predictions))), tf.float32
      )
      sums[name] = (tf.reduce_sum(values), tf.cast(tf.size(values), tf.float32))
    return sums


class DebugToyKerasModel(KerasModel):
  """The toy network in Keras layers: first feature -> Dense(hidden_neurons, relu) -> softmax."""

  def __init__(
    self,
    *,
    num_classes: int,
    learning_rate: float,
    hidden_neurons: int,
    feature_names: Sequence[str],
    label_names: Sequence[str],
  ):
    """Args:
    num_classes: width of the softmax.
    learning_rate: Adam learning rate (Keras defaults otherwise).
    hidden_neurons: width of the hidden layer.
    feature_names, label_names: passed by the engine; the first of each is used.

    Like `toy:DebugToyModel`, weights start at 0.01 and biases at 0, so the
    loss starts at ln(num_classes). Its loss is sparse categorical
    cross-entropy on the softmax, it reports `accuracy` and serves the toy
    model's `classes` / `probabilities`; its checkpoint keys are
    `hidden/kernel`, `hidden/bias`, `probabilities/kernel`, `probabilities/bias`.
    """
    if num_classes < 1 or hidden_neurons < 1:
      raise UserError(
        f"model.num_classes is {num_classes} and model.hidden_neurons is {hidden_neurons}; "
        "set both to 1 or more"
      )
    feature = list(feature_names)[0]

    def build() -> keras.Model:
      start = keras.initializers.Constant(0.01)
      number = keras.Input(shape=(1,), name=feature)
      hidden = keras.layers.Dense(hidden_neurons, "relu", kernel_initializer=start, name="hidden")(number)
      probabilities = keras.layers.Dense(
        num_classes, "softmax", kernel_initializer=start, name="probabilities"
      )(hidden)
      return keras.Model({feature: number}, probabilities, name="toy")

    super().__init__(
      builder=build,
      loss="sparse_categorical_crossentropy",
      learning_rate=learning_rate,
      metrics=["accuracy"],
      feature_names=feature_names,
      label_names=label_names,
    )

  def predictions(self, outputs: Tensors) -> dict[str, tf.Tensor]:
    probabilities = outputs[OUTPUT]
    return {"classes": tf.argmax(probabilities, axis=-1), "probabilities": probabilities}


@contextlib.contextmanager
def _fresh_layer_names() -> Iterator[None]:
  """Numbers unnamed layers from `dense` again while the builder runs, then restores the counters.

  Keras keeps the counters in its global state (no public API resets them
  alone; `keras.backend.clear_session()` would also drop the dtype policy
  that mixed precision set).
  """
  saved = global_state.get_global_attribute(_NAME_COUNTERS)
  global_state.set_global_attribute(_NAME_COUNTERS, None)
  try:
    yield
  finally:
    global_state.set_global_attribute(_NAME_COUNTERS, saved)


def _checked_network(network, feature_names: Sequence[str], *, where: str) -> keras.Model:
  """Refuses a builder result the engine cannot train or checkpoint, with what to do.

  Raises:
    UserError: not a keras.Model; no input shapes yet; not one output; an
      input that is no feature; two variables with one path.
  """
  if not isinstance(network, keras.Model):
    raise UserError(f"{where} returned {type(network).__name__}; return a keras.Model (uncompiled)")
  if not network.built or not network.weights or not hasattr(network, "outputs"):
    raise UserError(
      f"{where} returned a model without input shapes and variables yet; build it on keras.Input (a "
      "functional model, or a Sequential starting with keras.Input(shape=...))"
    )
  if len(network.outputs) != 1:
    raise UserError(f"{where} returned a model with {len(network.outputs)} outputs; give it one output")
  input_names = _dict_input_names(network)
  if input_names is not None:
    unknown = sorted(set(input_names) - set(feature_names))
    if unknown:
      raise UserError(
        f"{where} takes input {unknown[0]!r}, not a feature of features_map ({', '.join(feature_names)}); "
        "key the keras.Input dict by feature names"
      )
  elif len(network.inputs) != 1 or len(feature_names) != 1:
    raise UserError(
      f"{where} takes {len(network.inputs)} plain input(s) and features_map has {len(feature_names)} "
      "features; build the model on a dict of keras.Input keyed by feature name"
    )
  paths = [variable.path for variable in network.weights]
  repeated = sorted({path for path in paths if paths.count(path) > 1})
  if repeated:
    raise UserError(
      f"{where} returned a model with two variables named {repeated[0]!r}; give its layers unique names"
    )
  return network


def _dict_input_names(network: keras.Model) -> list[str] | None:
  """The keys of a model built on a dict of keras.Input, else None (one plain input)."""
  # A Sequential has no `input` attribute once built; it always takes one tensor.
  if isinstance(network, keras.Sequential):
    return None
  structure = network.input
  return list(structure) if isinstance(structure, dict) else None

"""The names a `keras:KerasModel` config gives, turned into functions: builder, loss, metrics.

Each name is resolved once, when the model is built from the config, so a
typo stops before any step with one line naming the `model.*` key. What is
resolved are plain per-example functions (`keras.losses.*`,
`keras.metrics.*` functions, or the user's `package.module:function`), never
stateful Keras `Metric` objects: the engine's eval pass adds up per-batch
(sum, count) pairs inside its compiled loop, which a per-example function
gives directly.
"""

import inspect
from collections.abc import Callable

import keras
import tensorflow as tf

from deephub import user_classes
from deephub.errors import UserError, closest

# Short names Keras' compile() accepts for the same functions.
_ALIASES = {
  "mse": "mean_squared_error",
  "mae": "mean_absolute_error",
  "mape": "mean_absolute_percentage_error",
  "msle": "mean_squared_logarithmic_error",
  "kld": "kl_divergence",
  "acc": "accuracy",
}
# Module helpers, not losses or metrics.
_NOT_FUNCTIONS = ("get", "serialize", "deserialize")
# Resolved from the label and prediction shapes, as Keras' compile() does.
ACCURACY = "accuracy"

PerExample = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def import_function(spec: str, *, key: str) -> Callable:
  """Returns the callable `spec` names as 'package.module:function'.

  Only the named module is imported; nothing is evaluated.

  Args:
    spec: 'package.module:function'.
    key: the config key holding it, for the message (`model.builder`).

  Raises:
    UserError: a malformed spec, a module that does not import, or no such callable.
  """
  shape = "give 'package.module:function'"
  function, module_name, attr = user_classes.import_named(spec, key=key, shape=shape)
  if not callable(function):
    raise UserError(f"{key} is {spec!r}: {module_name} has no function {attr!r}")
  return function


def _keras_functions(module) -> list[str]:
  return sorted(
    name
    for name, value in vars(module).items()
    if inspect.isfunction(value) and not name.startswith("_") and name not in _NOT_FUNCTIONS
  )


def loss_function(name: str, *, key: str = "model.loss") -> PerExample:
  """A Keras loss function name (`sparse_categorical_crossentropy`, `mse`) or 'package.module:function'.

  Raises:
    UserError: naming `key`, the value and the closest Keras loss names.
  """
  if ":" in str(name):
    return import_function(name, key=key)
  known = _keras_functions(keras.losses)
  resolved = _ALIASES.get(name, name)
  if resolved not in known:
    raise UserError(
      f"{key} is {name!r}, not a Keras loss function; closest: {closest(str(name), known)} "
      "(or give 'package.module:function')"
    )
  return getattr(keras.losses, resolved)


def metric_function(name: str, *, key: str = "model.metrics") -> PerExample | str:
  """A per-example Keras metric function, a 'package.module:function', or `ACCURACY`.

  `accuracy` (or `acc`) is returned as `ACCURACY`: `accuracy_function` picks
  binary, sparse or categorical accuracy once the shapes are known.

  Raises:
    UserError: an unknown name, or a stateful Keras metric (`auc`, `precision`)
      whose value is not a mean of per-example values.
  """
  if ":" in str(name):
    return import_function(name, key=key)
  resolved = _ALIASES.get(name, name)
  if resolved == ACCURACY:
    return ACCURACY
  known = _keras_functions(keras.metrics)
  if resolved not in known:
    raise UserError(
      f"{key} has {name!r}, not a per-example Keras metric function (deephub reports the mean of "
      f"per-example values over the eval pass); closest: {closest(str(name), [ACCURACY, *known])}"
    )
  return getattr(keras.metrics, resolved)


def accuracy_function(labels: tf.Tensor, predictions: tf.Tensor) -> PerExample:
  """The accuracy Keras' compile() would pick for these shapes (its `is_binary_or_sparse_categorical`)."""
  if predictions.shape[-1] == 1:
    return keras.metrics.binary_accuracy
  if len(labels.shape) < len(predictions.shape) or labels.shape[-1] == 1:
    return keras.metrics.sparse_categorical_accuracy
  return keras.metrics.categorical_accuracy


def same_rank(labels: tf.Tensor, predictions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Adds or drops a last axis of size 1 where the ranks differ by one, as Keras losses do.

  Labels `[batch]` against predictions `[batch, 1]` become `[batch, 1]`;
  against `[batch, classes]` they stay, for the sparse losses and metrics.
  """
  label_rank, prediction_rank = len(labels.shape), len(predictions.shape)
  if prediction_rank == label_rank + 1 and predictions.shape[-1] == 1:
    if label_rank == 1:
      labels = labels[:, None]
    else:
      predictions = tf.squeeze(predictions, axis=-1)
  elif label_rank == prediction_rank + 1 and labels.shape[-1] == 1:
    if prediction_rank == 1:
      predictions = predictions[:, None]
    else:
      labels = tf.squeeze(labels, axis=-1)
  return labels, predictions


def per_example(values: tf.Tensor) -> tf.Tensor:
  """A loss or metric as one value per example: the mean over any axes after the batch."""
  if len(values.shape) > 1:
    return tf.reduce_mean(values, axis=list(range(1, len(values.shape))))
  return values

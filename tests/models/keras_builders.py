"""Keras model builders the KerasModel tests name as `model.builder: 'tests.models.keras_builders:...'`."""

import keras
import tensorflow as tf

CLASSES = 100  # The toy labels are below 100, as the toy variant's num_classes says.


def functional() -> keras.Model:
  """A functional model on the feature dict: number -> Dense(16, relu) -> softmax."""
  number = keras.Input(shape=(1,), name="number")
  hidden = keras.layers.Dense(16, activation="relu", name="hidden")(number)
  probabilities = keras.layers.Dense(CLASSES, activation="softmax", name="probabilities")(hidden)
  return keras.Model({"number": number}, probabilities)


def sequential() -> keras.Model:
  """A Sequential with unnamed layers (so Keras numbers them): number -> Dense(16) -> softmax."""
  return keras.Sequential(
    [
      keras.Input(shape=(1,)),
      keras.layers.Dense(16, activation="relu"),
      keras.layers.Dense(CLASSES, activation="softmax"),
    ],
    name="seq",
  )


def binary() -> keras.Model:
  """One sigmoid unit, for the binary accuracy and rank handling."""
  number = keras.Input(shape=(1,), name="number")
  return keras.Model({"number": number}, keras.layers.Dense(1, activation="sigmoid", name="unit")(number))


def two_outputs() -> keras.Model:
  number = keras.Input(shape=(1,), name="number")
  return keras.Model({"number": number}, [keras.layers.Dense(2)(number), keras.layers.Dense(3)(number)])


def unbuilt() -> keras.Model:
  return keras.Sequential([keras.layers.Dense(2)])


def not_a_model():
  return keras.layers.Dense(2)


def wrong_input() -> keras.Model:
  other = keras.Input(shape=(1,), name="other")
  return keras.Model({"other": other}, keras.layers.Dense(2)(other))


def absolute_error(labels: tf.Tensor, predictions: tf.Tensor) -> tf.Tensor:
  """A user's per-example function, usable as a loss or a metric."""
  return tf.reduce_mean(tf.abs(labels - predictions), axis=-1)

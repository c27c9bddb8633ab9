"""The two training engines under benchmark, built on the same model, data and batch.

`DeephubEngine` runs what `train_and_evaluate` runs per outer loop: one
compiled `train_loop(iterator, num_steps)` call, the `.numpy()` sync of its
per-step logs, the non-finite check and the summary writes due at
`save_summary_steps`. Checkpoints and evaluation are left out on both sides
(Keras `fit` here has neither).

`KerasEngine` trains a Keras 3 functional model around an identically
initialised copy of the same network with `model.fit(jit_compile=True)`.
"""

import tempfile

import keras
import numpy as np
import tensorflow as tf

from benchmarks import synthetic_data
from deephub.config import defaults
from deephub.engine.run import write_train_summaries  # The loop's own per-loop host work.
from deephub.engine.steps import FINITE_KEY, make_train_loop
from deephub.engine.summaries import ScalarWriter
from deephub.io import make_feeder
from deephub.models import build_model

# name: (model config, features read, batch size).
MODELS = {
  "toy_b10": ({"type": "toy:DebugToyModel", "num_classes": 100, "learning_rate": 0.001,
               "hidden_neurons": 50}, ["number"], 10),
  "toy_b256": ({"type": "toy:DebugToyModel", "num_classes": 100, "learning_rate": 0.001,
                "hidden_neurons": 50}, ["number"], 256),
  "mlp_b1024": ({"type": "mlp:MLPClassifier", "num_classes": synthetic_data.NUM_CLASSES,
                 "learning_rate": 0.001, "hidden_units": [1024, 1024, 1024]}, ["dense"], 1024),
}  # fmt: skip


def benchmark_feeder(name: str, files: list[str], *, shuffle: bool | str = False):
  """The deephub feeder of benchmark model `name` over the synthetic files (unshuffled by default)."""
  _, feature_names, batch_size = MODELS[name]
  features = synthetic_data.features_map()
  return make_feeder(
    defaults.feeder_config(
      batch_size=batch_size,
      file_patterns=files,
      features_map={key: features[key] for key in feature_names},
      labels_map=synthetic_data.labels_map(),
      # No shuffle: Keras `fit` restarts the iterator on every call, and
      # refilling a shuffle buffer would be charged to Keras alone.
      drop_remainder=True,
      shuffle=shuffle,
    ),
    seed=0,
    where="benchmark feeder",
  )


class DeephubEngine:
  """deephub's inner loop plus its per-loop host work, as `train_and_evaluate` runs them."""

  def __init__(
    self, name: str, files: list[str], *, steps_per_loop: int, xla: bool, shuffle: bool | str = False
  ):
    feeder = benchmark_feeder(name, files, shuffle=shuffle)
    keras.utils.set_random_seed(42)  # The same initial weights as keras_twin's.
    self.model = build_model(
      MODELS[name][0], feature_names=feeder.feature_names, label_names=feeder.label_names
    )
    self.model.build(feeder.dataset(epochs=1).element_spec[0])
    self.batch_size = feeder.batch_size
    self.steps_per_loop = steps_per_loop
    self.save_summary_steps = defaults.base_config().train.save_summary_steps
    optimizer = self.model.optimizer()
    optimizer.build(self.model.trainable_variables)
    self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    self._train_loop = make_train_loop(
      self.model,
      optimizer,
      self.global_step,
      xla=xla,
      strategy=tf.distribute.get_strategy(),
      summary_steps=self.save_summary_steps,
    )
    self._iterator = iter(feeder.dataset(epochs=None))
    self._logdir = tempfile.TemporaryDirectory(prefix="deephub-bench-")
    self._writer = ScalarWriter(self._logdir.name)
    self.last_loss = float("nan")

  def train(self, num_steps: int) -> None:
    """Trains `num_steps` steps in loops of `steps_per_loop` (the last may be shorter)."""
    step = int(self.global_step)
    end = step + num_steps
    while step < end:
      n = min(self.steps_per_loop, end - step)
      logs = {k: v.numpy() for k, v in self._train_loop(self._iterator, tf.constant(n)).items()}
      finite = logs.pop(FINITE_KEY) > 0.999  # As the engine's loop checks it.
      if not np.all(finite):
        raise FloatingPointError(f"loss {logs['loss']} in the benchmark")
      write_train_summaries(self._writer, logs, step + 1, self.save_summary_steps, steps_per_sec=1.0)
      step += n
    self.last_loss = float(logs["loss"][-1])

  def close(self) -> None:
    self._writer.close()
    self._logdir.cleanup()


def keras_twin(
  model_config: dict, feeder, *, steps_per_execution: int, jit_compile: bool = True, seed: int = 42
):
  """Returns (compiled Keras model, dataset) training deephub's network the Keras way.

  The network is a fresh deephub model's own layer, so architecture and
  initial weights match; loss and optimizer are the deephub model's, plus
  Keras' accuracy metric (deephub summarises training accuracy too). The
  dataset is the deephub feeder's, its features concatenated into one input
  tensor in C++ (the MLP's input layout; the toy's single column).
  """
  keras.utils.set_random_seed(seed)
  twin = build_model(model_config, feature_names=feeder.feature_names, label_names=feeder.label_names)
  specs = feeder.dataset(epochs=1).element_spec[0]
  twin.build(specs)
  width = sum(int(np.prod(spec.shape[1:])) for spec in specs.values())
  inputs = keras.Input(shape=(width,))
  model = keras.Model(inputs, twin.network(inputs))
  model.compile(
    optimizer=twin.optimizer(),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
    jit_compile=jit_compile,
    steps_per_execution=steps_per_execution,
  )
  names, label = feeder.feature_names, feeder.label_names[0]

  def to_inputs(features, labels):
    columns = [
      tf.reshape(tf.cast(features[n], tf.float32), [-1, int(np.prod(specs[n].shape[1:]))]) for n in names
    ]
    return tf.concat(columns, axis=-1), labels[label]

  return model, feeder.dataset(epochs=None).map(to_inputs).prefetch(tf.data.AUTOTUNE)


class KerasEngine:
  """Keras 3 `fit` on the same network, data and batch (`jit_compile=True` unless told)."""

  def __init__(self, name: str, files: list[str], *, steps_per_execution: int, jit_compile: bool = True):
    feeder = benchmark_feeder(name, files)
    self.batch_size = feeder.batch_size
    self.model, self._dataset = keras_twin(
      MODELS[name][0], feeder, steps_per_execution=steps_per_execution, jit_compile=jit_compile
    )
    self.last_loss = float("nan")

  def train(self, num_steps: int) -> None:
    history = self.model.fit(self._dataset, epochs=1, steps_per_epoch=num_steps, verbose=0)
    self.last_loss = float(history.history["loss"][-1])

  def close(self) -> None:
    pass

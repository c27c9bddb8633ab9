"""Exports for serving: `saved_model_cli --input_examples` and a reload predict like the model."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from deephub import engine
from deephub.engine.modes import restore_trained
from deephub.engine.serving import RAW_SIGNATURE, ServingModule, list_exports, write_saved_model
from deephub.models.base import Model

NUMBERS = [3, 12, 7]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """A toy model trained 10 steps, exported, and its predictions in Python."""
  from deephub.config import variants

  config = variants.load_variant("toy")
  config.model.model_dir = str(tmp_path_factory.mktemp("model"))
  engine.train_and_evaluate(config)
  path = engine.export(config)
  model, _ = restore_trained(config)
  expected = model.predictions(model({"number": tf.constant(NUMBERS, tf.int64)}, training=False))
  return path, {name: value.numpy() for name, value in expected.items()}


def test_export_layout(exported):
  path, _ = exported
  base = os.path.dirname(path)
  assert os.path.basename(base) == "manual" and os.path.basename(path).isdigit()
  assert os.listdir(base) == [os.path.basename(path)]  # No temp-* left.
  assert {"saved_model.pb", "variables"} <= set(os.listdir(path))


def test_saved_model_cli_run_with_input_examples(exported):
  path, expected = exported
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  examples = "examples=[" + ",".join(f'{{"number":[{n}]}}' for n in NUMBERS) + "]"
  result = subprocess.run(
    [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
     "--input_examples", examples],
    capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert result.returncode == 0, result.stderr[-2000:]
  match = re.search(r"Result for output key classes:\s*\n\[([^\]]*)\]", result.stdout)
  assert match, result.stdout
  assert [int(c) for c in match.group(1).split()] == expected["classes"].tolist()


def test_reloaded_signatures_predict_like_the_model(exported):
  path, expected = exported
  loaded = tf.saved_model.load(path)
  assert set(loaded.signatures) == {"serving_default", RAW_SIGNATURE}
  examples = [
    tf.train.Example(
      features=tf.train.Features(
        feature={"number": tf.train.Feature(int64_list=tf.train.Int64List(value=[n]))}
      )
    ).SerializeToString()
    for n in NUMBERS
  ]
  from_examples = loaded.signatures["serving_default"](examples=tf.constant(examples))
  # The toy's `number` has shape [1]: a raw batch is [batch, 1].
  from_raw = loaded.signatures[RAW_SIGNATURE](number=tf.constant(NUMBERS, tf.int64)[:, None])
  for outputs in (from_examples, from_raw):
    assert set(outputs) == {"classes", "probabilities"}
    np.testing.assert_array_equal(outputs["classes"].numpy(), expected["classes"])
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected["probabilities"], rtol=1e-6)


class _SumModel(Model):
  """Sums a VarLenFeature per example, times one weight: enough to check the signatures."""

  def __init__(self):
    super().__init__(feature_names=["ids"], label_names=[])
    self._network = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="sum")
    self._network.build((None, 1))

  @property
  def network(self):
    return self._network

  def __call__(self, features, *, training):
    total = tf.reshape(tf.sparse.reduce_sum(tf.cast(features["ids"], tf.float32), axis=1), [-1, 1])
    return {"total": tf.reshape(self._network(total), [-1])}

  def loss(self, labels, outputs):
    raise NotImplementedError  # Never trained.

  def optimizer(self):
    raise NotImplementedError


def test_var_len_feature_and_timestamp_collisions(tmp_path):
  module = ServingModule(_SumModel(), {"ids": {"type": "VarLenFeature", "dtype": "int64"}})
  paths = [write_saved_model(module, str(tmp_path), clock=lambda: 100.0) for _ in range(2)]
  assert [os.path.basename(p) for p in paths] == ["100", "101"]  # Same second: the next number.
  assert list_exports(str(tmp_path)) == paths

  loaded = tf.saved_model.load(paths[1])
  lists = [[1, 2, 3], [], [5]]
  examples = [
    tf.train.Example(
      features=tf.train.Features(feature={"ids": tf.train.Feature(int64_list=tf.train.Int64List(value=v))})
    ).SerializeToString()
    for v in lists
  ]
  from_examples = loaded.signatures["serving_default"](examples=tf.constant(examples))["total"]
  padded = tf.constant([[1, 2, 3], [0, 0, 0], [5, 0, 0]], tf.int64)  # Zeros are padding.
  from_raw = loaded.signatures[RAW_SIGNATURE](ids=padded)["total"]
  np.testing.assert_array_equal(from_examples.numpy(), [6.0, 0.0, 5.0])
  np.testing.assert_array_equal(from_raw.numpy(), [6.0, 0.0, 5.0])


def test_raw_input_names_are_python_arguments_that_map_back():
  from deephub.engine.serving import raw_input_names

  names = raw_input_names({"image/encoded": 0, "image_encoded": 0, "2d": 0, "plain": 0})
  assert names == {
    "image_encoded": "image/encoded",
    "image_encoded_2": "image_encoded",
    "_2d": "2d",
    "plain": "plain",
  }
  assert all(argument.isidentifier() for argument in names)

"""`deephub.train_and_evaluate`: the Python API over in-memory feeders."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import deephub
from deephub import engine, variants
from deephub.engine.modes import restore_trained
from deephub.errors import UserError
from deephub.io import MemorySamplesFeeder
from deephub.io.feeder import Feeder
from tests.conftest import REPO, run_cli


@pytest.fixture
def mlp_config(tmp_path):
  config = variants.load_variant("mlp")
  config.model.model_dir = str(tmp_path / "model")
  config.train.save_summary_steps = 100
  return config


def test_trains_numpy_digits_past_90_percent(mlp_config):
  digits = load_digits()  # 1797 8x8 images, bundled with scikit-learn (no download).
  order = np.random.default_rng(0).permutation(len(digits.target))  # A random split, as in the README.
  x = (digits.data[order] / 16.0).astype(np.float32)
  y = digits.target[order].astype(np.int64)
  mlp_config.model.num_classes = 10
  mlp_config.model.hidden_units = [64]
  mlp_config.train.epochs = 10
  train = MemorySamplesFeeder({"pixels": x[:1500]}, {"digit": y[:1500]}, batch_size=50, shuffle=True, seed=1)
  test = MemorySamplesFeeder({"pixels": x[1500:]}, {"digit": y[1500:]}, batch_size=100)
  assert isinstance(train, Feeder)

  results = deephub.train_and_evaluate(mlp_config, train_feeder=train, eval_feeder=test)

  assert results["accuracy"] > 0.9, results
  model_dir = mlp_config.model.model_dir
  # The same model_dir as `deep trainer train`: 10 epochs x 30 steps, resolved config, eval events.
  assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-300")
  assert os.path.isfile(os.path.join(model_dir, "config.json"))
  assert tf.io.gfile.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*"))


def test_trains_a_dataframe_without_eval_feeder(mlp_config):
  mlp_config.train.eval_feeder.file_patterns = []  # No configured eval feeder either,
  mlp_config.train.validation_secs = None  # so no evaluation period (one would be refused).
  mlp_config.train.epochs = 2
  frame = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
  feeder = MemorySamplesFeeder(frame, pd.DataFrame({"label": np.arange(20) % 2}), batch_size=5)

  assert deephub.train_and_evaluate(mlp_config, train_feeder=feeder) == {}
  assert tf.train.latest_checkpoint(mlp_config.model.model_dir).endswith("model.ckpt-8")


def test_refuses_an_object_that_is_no_feeder(mlp_config):
  with pytest.raises(UserError, match=r"^train_feeder is a ndarray, not a feeder; pass an object"):
    deephub.train_and_evaluate(mlp_config, train_feeder=np.zeros(3))


def test_import_deephub_stays_free_of_tensorflow_and_the_entry_point_module_runs(tmp_path):
  code = (
    "import sys, deephub; assert 'tensorflow' not in sys.modules; "
    "print(deephub.train_and_evaluate.__module__, 'tensorflow' in sys.modules)"
  )
  env = {**os.environ, "PYTHONPATH": REPO}
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "deephub.api False"  # Getting the function loads no TensorFlow either.
  model_dir = tmp_path / "toy"
  trained = run_cli("--variant=toy", f"--config.model.model_dir={model_dir}", "--config.train.epochs=1")
  assert trained.returncode == 0, trained.stderr
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("model.ckpt-1")


def _serialized_examples(columns: dict[str, np.ndarray]) -> list[bytes]:
  """One tf.Example per row: floats as float_list, integers as int64_list, each value flattened."""
  rows = len(next(iter(columns.values())))
  examples = []
  for i in range(rows):
    feature = {}
    for name, column in columns.items():
      values = np.asarray(column[i]).ravel()
      if values.dtype.kind == "f":
        feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
      else:
        feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))
    examples.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
  return examples


def test_exports_a_model_trained_from_memory_that_serves_its_examples(mlp_config):
  rng = np.random.default_rng(3)
  # float64 (numpy's default) and int32 columns: a tf.Example holds float32 and int64,
  # so serving casts them back; the float64 values are float32 ones, exact in both.
  pixels = rng.random((40, 2, 3)).astype(np.float32).astype(np.float64)
  count = rng.integers(0, 9, 40).astype(np.int32)
  y = (pixels.sum(axis=(1, 2)) > 3).astype(np.int64)
  mlp_config.model.num_classes, mlp_config.model.hidden_units = 2, [8]
  mlp_config.train.epochs = 2
  mlp_config.train.eval_feeder.file_patterns = []
  mlp_config.train.validation_secs = None
  mlp_config.train.exporters.final.name = "final"
  # The variant's features_map still names the toy's `number`: the feeder's features are served.
  assert list(mlp_config.train.train_feeder.features_map) == ["number"]
  feeder = MemorySamplesFeeder({"pixels": pixels, "count": count}, {"label": y}, batch_size=10)

  deephub.train_and_evaluate(mlp_config, train_feeder=feeder)

  model, step = restore_trained(mlp_config, feeder.dataset(epochs=1).element_spec[0], train_feeder=feeder)
  assert step == 8
  outputs = model({"pixels": tf.constant(pixels), "count": tf.constant(count)}, training=False)
  expected = {name: value.numpy() for name, value in model.predictions(outputs).items()}
  examples = tf.constant(_serialized_examples({"pixels": pixels, "count": count}))
  (final,) = tf.io.gfile.glob(os.path.join(mlp_config.model.model_dir, "export", "final", "*"))
  # The export mode afterwards, given the feeder: the same inputs, the same predictions.
  manual = engine.export(mlp_config, train_feeder=feeder)
  # A features_map holding the feeder's features (and one more, optional) is used as it is.
  mlp_config.train.train_feeder.features_map = {
    "count": {"shape": [], "dtype": "int64"},
    "pixels": {"shape": [2, 3], "dtype": "float32"},
    "unused": {"type": "VarLenFeature", "dtype": "string"},
  }
  configured = engine.export(mlp_config, train_feeder=feeder)
  raw_inputs = {"pixels": tf.constant(pixels, tf.float32), "count": tf.constant(count, tf.int64)}
  for path, extra in ((final, {}), (manual, {}), (configured, {"unused": tf.fill([40, 1], "")})):
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](examples=examples)
    raw = loaded.signatures["predict_raw"](**raw_inputs, **extra)  # Every entry is an input.
    for outputs in (served, raw):
      np.testing.assert_array_equal(outputs["classes"].numpy(), expected["classes"])
      np.testing.assert_allclose(outputs["probabilities"].numpy(), expected["probabilities"], rtol=1e-6)


def test_export_mode_without_features_names_the_key(mlp_config):
  mlp_config.train.train_feeder.features_map = {}
  error = r"^train\.train_feeder\.features_map is empty; .* set it \(trained from a feeder object: "
  with pytest.raises(UserError, match=error):
    engine.export(mlp_config)

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
from deephub import variants
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

"""evaluate / export / predict on a trained model_dir, as functions and as `--mode`."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from deephub import engine
from deephub.errors import UserError
from tests.conftest import read_scalars, run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """The toy variant trained 10 steps; returns (config, final eval results)."""
  from deephub.config import variants

  config = variants.load_variant("toy")
  config.model.model_dir = str(tmp_path_factory.mktemp("model"))
  return config, engine.train_and_evaluate(config)


def test_evaluate_repeats_the_final_evaluation(trained):
  config, results = trained
  evaluated = engine.evaluate(config)
  assert evaluated["global_step"] == 10
  for name, value in results.items():
    assert evaluated[name] == pytest.approx(value, rel=1e-6)
  assert list(read_scalars(os.path.join(config.model.model_dir, "eval"))["loss"]) == [10]


def test_predict_writes_one_json_line_per_example(trained, tmp_path):
  config, _ = trained
  path = tmp_path / "out" / "predictions.jsonl"
  assert engine.predict(config, str(path)) == 10
  rows = [json.loads(line) for line in path.read_text().splitlines()]
  assert len(rows) == 10 and set(rows[0]) == {"classes", "probabilities"}
  assert len(rows[0]["probabilities"]) == 100
  assert sum(rows[0]["probabilities"]) == pytest.approx(1.0, rel=1e-5)


def test_modes_need_a_checkpoint(toy_config):
  for call in (engine.evaluate, engine.export, lambda c: engine.predict(c, "unused")):
    with pytest.raises(UserError, match="holds no checkpoint; train the variant first"):
      call(toy_config)


def test_cli_modes(trained, tmp_path):
  config, _ = trained
  model_dir = config.model.model_dir
  base = ["--variant=toy", f"--config.model.model_dir={model_dir}"]
  exported = run_cli(*base, "--mode=export")
  assert exported.returncode == 0, exported.stderr[-2000:]
  assert "deephub: exported toy to " in exported.stderr
  assert os.path.isfile(
    os.path.join(exported.stderr.split("exported toy to ")[1].split()[0], "saved_model.pb")
  )

  predicted = run_cli(*base, "--mode=predict", f"--predictions_path={tmp_path / 'p.jsonl'}")
  assert predicted.returncode == 0, predicted.stderr[-2000:]
  assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 10

  evaluated = run_cli(*base, "--mode=evaluate")
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  assert "deephub: evaluated toy: loss = " in evaluated.stderr and "global_step = 10" in evaluated.stderr


def test_cli_mode_error_is_one_line(tmp_path):
  result = run_cli("--variant=toy", f"--config.model.model_dir={tmp_path}", "--mode=export")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith("deephub: error: model_dir")
  assert "Traceback" not in result.stderr


def test_export_mode_restores_a_model_whose_variables_take_the_input_shape(tmp_path):
  """MLPClassifier creates its weights from the input width: the export builds it before the restore."""
  from deephub.config import variants
  from deephub.engine.modes import restore_trained

  config = variants.load_variant("mlp")
  config.model.model_dir = str(tmp_path / "model")
  config.train.epochs, config.train.save_summary_steps = 3, 100
  engine.train_and_evaluate(config)

  loaded = tf.saved_model.load(engine.export(config))
  numbers = tf.constant([[3], [12], [7]], tf.int64)
  model, step = restore_trained(config, {"number": tf.TensorSpec([None, 1], tf.int64)})
  assert step == 3
  expected = model.predictions(model({"number": numbers}, training=False))
  served = loaded.signatures["predict_raw"](number=numbers)
  np.testing.assert_allclose(served["probabilities"].numpy(), expected["probabilities"].numpy(), rtol=1e-6)
  # The checkpoint's weights, read without the model: the restore took place.
  checkpoint = tf.train.latest_checkpoint(config.model.model_dir)
  exported = {weight.name.split(":")[0]: weight.numpy() for weight in loaded.weights}
  kernel = tf.train.load_variable(checkpoint, "mlp/dense_0/kernel")
  np.testing.assert_array_equal(exported["mlp/dense_0/kernel"], kernel)

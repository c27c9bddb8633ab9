"""deephub and a real `tf.estimator.Estimator` share model_dirs (the issue's 5 cases).

Runs only in the Estimator environment (tensorflow 2.15.1 +
tensorflow-estimator 2.15.0, built by .ci/run): `pytest -m estimator`.
deephub needs Keras 3, so it runs as a child process with the main
environment's Python, named by DEEPHUB_MAIN_PYTHON; the Estimator runs here.
The Estimator side is a TF1 `model_fn` with DebugToyModel's variables.
One batch of 10 is the whole toy train set, so both sides see the same
batch every step whatever the shuffling.
"""

import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO, read_scalars

pytestmark = pytest.mark.estimator

TOY_DIR = os.path.join(REPO, "deephub", "resources", "blobs", "data", "toy")
HIDDEN, CLASSES, LR = 50, 100, 0.001
N = 3  # Steps of the first run on either side.
TOTAL = 5  # Steps after resuming.
WEIGHTS = [f"toy/{v}" for v in ("w1", "b1", "w2", "b2")]
STATE = WEIGHTS + [f"{w}/Adam{s}" for w in WEIGHTS for s in ("", "_1")] + ["beta1_power", "beta2_power"]


def main_python() -> str:
  python = os.environ.get("DEEPHUB_MAIN_PYTHON")
  if not python:
    pytest.fail(
      "set DEEPHUB_MAIN_PYTHON to the main environment's python (deephub + TF >= 2.17); .ci/run does"
    )
  return python


def run_main(*args: str) -> str:
  """Runs `DEEPHUB_MAIN_PYTHON ARGS` from the repo; returns stdout, fails with stderr."""
  result = subprocess.run(
    [main_python(), *args],
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": REPO},
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert result.returncode == 0, f"deephub {args} failed:\n{result.stderr[-3000:]}"
  return result.stdout


def deephub(model_dir, *overrides: str, mode: str = "train", flags: tuple[str, ...] = ()) -> None:
  """Runs the toy variant through `python -m deephub.train` with --config overrides."""
  config_flags = [f"--config.{o}" for o in overrides]
  run_main("-m", "deephub.train", "--variant=toy", f"--mode={mode}", f"--config.model.model_dir={model_dir}",
           *config_flags, *flags)  # fmt: skip


def deephub_weights(model_dir) -> dict[str, np.ndarray]:
  """The weights deephub's own model holds after restoring model_dir."""
  script = (
    "import json, sys\n"
    "from deephub.config import variants\n"
    "from deephub.engine.modes import restore_trained\n"
    "config = variants.load_variant('toy')\n"
    "config.model.model_dir = sys.argv[1]\n"
    "model, _ = restore_trained(config)\n"
    "print(json.dumps({n: v.numpy().tolist() for n, v in model.named_variables().items()}))\n"
  )
  return {
    k: np.array(v) for k, v in json.loads(run_main("-c", script, str(model_dir)).splitlines()[-1]).items()
  }


def model_fn(features, labels, mode, params):
  """The Estimator-era toy model: DebugToyModel's variables, TF1 Adam."""
  x = tf.reshape(tf.cast(features["number"], tf.float32), [-1, 1])
  with tf.compat.v1.variable_scope("toy"):
    w1 = tf.compat.v1.get_variable("w1", [1, HIDDEN], initializer=tf.compat.v1.constant_initializer(0.01))
    b1 = tf.compat.v1.get_variable("b1", [HIDDEN], initializer=tf.compat.v1.zeros_initializer())
    w2 = tf.compat.v1.get_variable(
      "w2", [HIDDEN, CLASSES], initializer=tf.compat.v1.constant_initializer(0.01)
    )
    b2 = tf.compat.v1.get_variable("b2", [CLASSES], initializer=tf.compat.v1.zeros_initializer())
  logits = tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) + b2
  classes = tf.argmax(logits, axis=-1)
  if mode == tf.estimator.ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(
      mode, predictions={"classes": classes, "probabilities": tf.nn.softmax(logits)}
    )
  label = tf.reshape(labels["label"], [-1])
  loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=label, logits=logits))
  if mode == tf.estimator.ModeKeys.EVAL:
    accuracy = tf.compat.v1.metrics.accuracy(labels=label, predictions=classes)
    return tf.estimator.EstimatorSpec(mode, loss=loss, eval_metric_ops={"accuracy": accuracy})
  optimizer = tf.compat.v1.train.AdamOptimizer(params["learning_rate"], 0.9, 0.999, 1e-8)
  train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
  return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)


def input_fn(split: str, *, labels: bool = True):
  spec = {"number": tf.io.FixedLenFeature([], tf.int64), "label": tf.io.FixedLenFeature([], tf.int64)}

  def parse(serialized):
    parsed = tf.io.parse_example(serialized, spec)
    features = {"number": parsed["number"]}
    return (features, {"label": parsed["label"]}) if labels else features

  def make():
    records = tf.data.TFRecordDataset(os.path.join(TOY_DIR, f"{split}-00000-of-00001")).batch(10)
    return (records.repeat() if split == "train" else records).map(parse)

  return make


def estimator(model_dir, *, learning_rate: float = LR, warm_start_from=None):
  config = tf.estimator.RunConfig(
    model_dir=str(model_dir), save_summary_steps=1, save_checkpoints_steps=100, log_step_count_steps=1
  )
  return tf.estimator.Estimator(
    model_fn, config=config, params={"learning_rate": learning_rate}, warm_start_from=warm_start_from
  )


def checkpoint(model_dir) -> dict[str, np.ndarray]:
  reader = tf.train.load_checkpoint(str(model_dir))
  return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}


def assert_close(actual: dict, expected: dict, keys, rtol=1e-4, atol=1e-6) -> None:
  for key in keys:
    np.testing.assert_allclose(actual[key], expected[key], rtol=rtol, atol=atol, err_msg=key)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """The shared runs: E (Estimator, N steps), E_total (E continued by the Estimator to
  TOTAL and evaluated), D (deephub, N steps), D_total (deephub straight to TOTAL)."""
  root = tmp_path_factory.mktemp("runs")
  dirs = {name: root / name for name in ("E", "E_total", "D", "D_total")}
  estimator(dirs["E"]).train(input_fn("train"), max_steps=N)
  shutil.copytree(dirs["E"], dirs["E_total"])
  # TF1 event files are named events.out.tfevents.<unix seconds>.<host>: a
  # continuation started within the same second would overwrite the copied
  # file (and its steps 1..N) instead of adding a new one.
  time.sleep(1.1)
  continued = estimator(dirs["E_total"])
  continued.train(input_fn("train"), max_steps=TOTAL)
  continued.evaluate(input_fn("validation"))
  deephub(dirs["D"], f"train.epochs={N}")
  deephub(dirs["D_total"], f"train.epochs={TOTAL}")
  return dirs


def test_1_deephub_resumes_an_estimator_run(runs, tmp_path):
  resumed = tmp_path / "E_resumed_by_deephub"
  shutil.copytree(runs["E"], resumed)
  before = checkpoint(resumed)
  assert before["global_step"] == N

  deephub(resumed, f"train.epochs={TOTAL}")

  after, expected = checkpoint(resumed), checkpoint(runs["E_total"])
  assert after["global_step"] == TOTAL
  # Same weights and Adam state as the Estimator continuing itself: deephub
  # started from the Estimator's weights, moments and beta powers.
  assert_close(after, expected, STATE)
  deephub_loss = read_scalars(str(resumed))["loss"]  # Estimator's N steps, then deephub's.
  estimator_loss = read_scalars(str(runs["E_total"]))["loss"]
  for step in range(N + 1, TOTAL + 1):
    assert deephub_loss[step] == pytest.approx(estimator_loss[step], rel=1e-5), step


def test_2_estimator_resumes_a_deephub_run(runs, tmp_path):
  resumed = tmp_path / "D_resumed_by_estimator"
  shutil.copytree(runs["D"], resumed)
  # The restore raises NotFoundError if any variable, slot or beta power is missing.
  estimator(resumed).train(input_fn("train"), max_steps=TOTAL)

  after, expected = checkpoint(resumed), checkpoint(runs["D_total"])
  assert after["global_step"] == TOTAL
  assert_close(after, expected, STATE)
  estimator_loss = read_scalars(str(resumed))["loss"]
  deephub_loss = read_scalars(str(runs["D_total"]))["loss"]
  for step in range(N + 1, TOTAL + 1):
    assert estimator_loss[step] == pytest.approx(deephub_loss[step], rel=1e-5), step


def test_3_warm_start_both_ways(runs, tmp_path):
  # The Estimator warm-starts from deephub's checkpoints; learning rate 0
  # keeps the warm-started values through the one step that writes them.
  settings = tf.estimator.WarmStartSettings(ckpt_to_initialize_from=str(runs["D"]), vars_to_warm_start=".*")
  from_deephub = tmp_path / "estimator_from_deephub"
  estimator(from_deephub, learning_rate=0.0, warm_start_from=settings).train(input_fn("train"), max_steps=1)
  assert_close(checkpoint(from_deephub), checkpoint(runs["D"]), WEIGHTS, rtol=0, atol=0)
  assert checkpoint(from_deephub)["global_step"] == 1  # The step is not carried over.

  from_estimator = tmp_path / "deephub_from_estimator"
  deephub(from_estimator, "train.epochs=1", "model.learning_rate=0.0",
          f"train.warm_start_check_point={runs['E_total']}")  # fmt: skip
  warm = checkpoint(from_estimator)
  assert warm["global_step"] == 1
  assert_close(warm, checkpoint(runs["E_total"]), WEIGHTS, rtol=0, atol=0)
  # Only trainable variables, as Estimator: the Adam moments start fresh.
  assert not np.allclose(warm["toy/w2/Adam_1"], checkpoint(runs["E_total"])["toy/w2/Adam_1"])


def test_4_estimator_reads_deephub_weights_and_predicts_the_same(runs, tmp_path):
  reader = estimator(runs["D_total"])
  ours = deephub_weights(runs["D_total"])
  for name in WEIGHTS:
    np.testing.assert_array_equal(reader.get_variable_value(name), ours[name], err_msg=name)

  predictions = tmp_path / "predictions.jsonl"
  deephub(runs["D_total"], mode="predict", flags=[f"--predictions_path={predictions}"])
  lines = [json.loads(line) for line in predictions.read_text().splitlines()]
  expected = list(reader.predict(input_fn("validation", labels=False)))
  assert len(lines) == len(expected) == 10
  for line, want in zip(lines, expected, strict=True):
    assert line["classes"] == want["classes"]
    np.testing.assert_allclose(line["probabilities"], want["probabilities"], rtol=1e-5, atol=1e-7)


def test_5_scalars_match_the_estimator_layout(runs):
  from tensorflow_estimator.python.estimator import early_stopping  # The Estimator's own reader.

  estimator_train, deephub_train = read_scalars(str(runs["E_total"])), read_scalars(str(runs["D_total"]))
  assert {"loss", "global_step/sec"} <= set(estimator_train)
  assert {"loss", "global_step/sec"} <= set(deephub_train)
  assert sorted(deephub_train["loss"]) == sorted(estimator_train["loss"])  # Same steps.

  estimator_eval = early_stopping.read_eval_metrics(str(runs["E_total"] / "eval"))
  deephub_eval = early_stopping.read_eval_metrics(str(runs["D_total"] / "eval"))
  # Both evaluated once, at the final checkpoint's step, with the same tags.
  assert list(estimator_eval) == list(deephub_eval) == [TOTAL]
  assert set(deephub_eval[TOTAL]) == set(estimator_eval[TOTAL]) - {"global_step"}
  # BestExporter's event reader finds deephub's eval loss (it needs simple_value).
  best_exporter = tf.estimator.BestExporter(serving_input_receiver_fn=lambda: None)
  best = best_exporter._get_best_eval_result(str(runs["D_total"] / "eval" / "*.tfevents.*"))
  assert best["loss"] == pytest.approx(deephub_eval[TOTAL]["loss"])
  # The same checkpoint evaluated by the Estimator gives deephub's numbers.
  results = estimator(runs["D_total"]).evaluate(input_fn("validation"))
  for tag, value in deephub_eval[TOTAL].items():
    assert value == pytest.approx(results[tag], rel=1e-5), tag

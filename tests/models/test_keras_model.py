"""keras:KerasModel and keras:DebugToyKerasModel: names, losses, metrics, one-line errors, and real runs."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from deephub.engine import train_and_evaluate
from deephub.engine.checkpoint import optimizer_entries
from deephub.engine.steps import make_train_loop
from deephub.errors import UserError
from deephub.models import build_model, registry_names
from deephub.models.registry.keras import OPTIMIZERS
from tests.cli_run import run_deep
from tests.conftest import read_scalars

BUILDERS = "tests.models.keras_builders"
FUNCTIONAL = {
  "type": "keras:KerasModel",
  "builder": f"{BUILDERS}:functional",
  "loss": "sparse_categorical_crossentropy",
  "learning_rate": 0.01,
}


def _model(feature_names=("number",), label_names=("label",), **params):
  return build_model(
    {**FUNCTIONAL, **params}, feature_names=list(feature_names), label_names=list(label_names)
  )


def test_registry_lists_both():
  assert {"keras:KerasModel", "keras:DebugToyKerasModel"} <= set(registry_names())


@pytest.mark.parametrize(
  "builder, paths",
  [
    ("functional", ["hidden/kernel", "hidden/bias", "probabilities/kernel", "probabilities/bias"]),
    # Unnamed layers are numbered from `dense` in every build, whatever the process made before.
    ("sequential", ["seq/dense/kernel", "seq/dense/bias", "seq/dense_1/kernel", "seq/dense_1/bias"]),
  ],
)
def test_checkpoint_keys_are_the_keras_paths_and_stable_across_builds(builder, paths):
  before = keras.layers.Dense(3).name  # Advances Keras' own `dense` counter.
  first = _model(builder=f"{BUILDERS}:{builder}")
  second = _model(builder=f"{BUILDERS}:{builder}")
  assert list(first.named_variables()) == list(second.named_variables()) == paths
  # Keras' numbering outside the builder goes on where it was.
  assert _number(keras.layers.Dense(3).name) == _number(before) + 1


def _number(name):
  """Keras' automatic layer number: `dense` is 0, `dense_3` is 3."""
  return int(name.rpartition("_")[2]) if "_" in name else 0


def test_debug_toy_keras_model_starts_as_the_toy_does():
  model = build_model(
    {"type": "keras:DebugToyKerasModel", "num_classes": 7, "learning_rate": 0.1, "hidden_neurons": 5},
    feature_names=["number"],
    label_names=["label"],
  )
  variables = model.named_variables()
  assert list(variables) == ["hidden/kernel", "hidden/bias", "probabilities/kernel", "probabilities/bias"]
  np.testing.assert_array_equal(variables["hidden/kernel"].numpy(), np.full((1, 5), 0.01, np.float32))
  outputs = model({"number": tf.constant([0, 3], tf.int64)}, training=False)
  labels = {"label": tf.constant([1, 2], tf.int64)}
  # Equal logits for every class, as in the toy model: the loss is ln(7).
  np.testing.assert_allclose(model.loss(labels, outputs).numpy(), [np.log(7)] * 2, rtol=1e-5)
  assert [float(v) for v in model.eval_metrics(labels, outputs)["accuracy"]] == [0.0, 2.0]
  assert set(model.predictions(outputs)) == {"classes", "probabilities"}


def test_loss_and_metrics_match_keras():
  model = _model(metrics=["accuracy", "sparse_top_k_categorical_accuracy"])
  features = {"number": tf.constant([1, 5, 9], tf.int64)}
  labels = {"label": tf.constant([3, 0, 7], tf.int64)}
  outputs = model(features, training=False)
  probabilities = outputs["predictions"]
  expected = keras.losses.sparse_categorical_crossentropy(labels["label"], probabilities)
  np.testing.assert_allclose(model.loss(labels, outputs).numpy(), expected.numpy(), rtol=1e-6)
  sums = model.eval_metrics(labels, outputs)
  expected_accuracy = np.mean(np.argmax(probabilities.numpy(), axis=-1) == [3, 0, 7])
  assert float(sums["accuracy"][0] / sums["accuracy"][1]) == pytest.approx(expected_accuracy)
  assert float(sums["accuracy"][1]) == 3.0
  top5 = keras.metrics.sparse_top_k_categorical_accuracy(labels["label"], probabilities)
  assert float(sums["sparse_top_k_categorical_accuracy"][0]) == pytest.approx(float(tf.reduce_sum(top5)))


def test_binary_output_takes_rank_one_labels_and_binary_accuracy():
  user_metric = f"{BUILDERS}:absolute_error"
  model = _model(
    builder=f"{BUILDERS}:binary", loss="binary_crossentropy", metrics=["acc", "mse", user_metric]
  )
  outputs = model({"number": tf.constant([1, 2], tf.int64)}, training=False)
  labels = {"label": tf.constant([1, 0], tf.int64)}  # [batch] against predictions [batch, 1].
  p = outputs["predictions"].numpy()[:, 0]
  expected = -(np.log(p[0]) + np.log(1 - p[1])) / 2
  assert float(tf.reduce_mean(model.loss(labels, outputs))) == pytest.approx(expected, rel=1e-4)
  sums = model.eval_metrics(labels, outputs)
  assert float(sums["acc"][1]) == 2.0
  assert float(sums["acc"][0]) == float((p[0] > 0.5) + (p[1] <= 0.5))
  assert float(sums["mse"][0]) == pytest.approx((1 - p[0]) ** 2 + p[1] ** 2, rel=1e-5)
  assert float(sums[user_metric][0]) == pytest.approx((1 - p[0]) + p[1], rel=1e-5)


@pytest.mark.parametrize(
  "params, message",
  [
    (
      {"builder": "tests.models.keras_builders"},
      r"model.builder is 'tests.models.keras_builders'; give 'package",
    ),
    ({"builder": "no_such_package.nets:build"}, r"model.builder is .*: no module 'no_such_package.nets'"),
    (
      {"builder": f"{BUILDERS}:nope"},
      r"model.builder is .*: tests.models.keras_builders has no function 'nope'",
    ),
    ({"builder": f"{BUILDERS}:not_a_model"}, r"model.builder .* returned Dense; return a keras.Model"),
    ({"builder": f"{BUILDERS}:unbuilt"}, r"model.builder .* without input shapes .*keras.Input"),
    ({"builder": f"{BUILDERS}:two_outputs"}, r"model.builder .* with 2 outputs"),
    ({"builder": f"{BUILDERS}:wrong_input"}, r"model.builder .* takes input 'other', not a feature"),
    (
      {"loss": "sparse_categorical_crossentropyy"},
      r"model.loss is 'sparse_categorical_crossentropyy', not a",
    ),
    ({"loss": "nope.losses:fn"}, r"model.loss is 'nope.losses:fn': no module"),
    ({"metrics": ["accuracy", "auc"]}, r"model.metrics has 'auc', not a per-example Keras metric"),
    ({"metrics": "accuracy"}, r"model.metrics is 'accuracy'; give a list"),
    ({"optimizer": "rmsprop"}, r"model.optimizer is 'rmsprop'; use one of adam, sgd"),
    ({"label": "number"}, r"model.label is 'number'; use one of labels_map: label"),
    ({"optimiser": "adam"}, r"model.optimiser is not a parameter of keras:KerasModel; closest: 'optimizer'"),
  ],
)
def test_bad_params_give_one_line_errors_naming_the_key(params, message):
  with pytest.raises(UserError, match=message) as error:
    _model(**params)
  assert "\n" not in str(error.value)


def test_a_plain_input_model_needs_exactly_one_feature():
  with pytest.raises(UserError, match=r"takes 1 plain input\(s\) and features_map has 2 features"):
    _model(builder=f"{BUILDERS}:sequential", feature_names=["number", "other"])


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_has_estimator_checkpoint_names(optimizer):
  model = _model(optimizer=optimizer)
  built = model.optimizer()
  built.build(model.trainable_variables)
  entries = optimizer_entries(built, model.named_variables())  # Raises for an optimizer it cannot name.
  if optimizer == "adam":
    assert {"hidden/kernel/Adam", "hidden/kernel/Adam_1", "beta1_power"} <= set(entries)


@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_the_engine_step_compiles_with_xla(builder):
  model = _model(builder=f"{BUILDERS}:{builder}")
  optimizer = model.optimizer()
  optimizer.build(model.trainable_variables)
  global_step = tf.Variable(0, dtype=tf.int64)
  strategy = tf.distribute.get_strategy()
  loop = make_train_loop(model, optimizer, global_step, xla=True, strategy=strategy)
  data = tf.data.Dataset.from_tensors(
    ({"number": tf.constant([1, 2, 3], tf.int64)}, {"label": tf.constant([1, 2, 3], tf.int64)})
  ).repeat()
  before = model.named_variables()[
    "probabilities/kernel" if builder == "functional" else "seq/dense_1/kernel"
  ]
  start = before.numpy().copy()
  logs = loop(iter(data), tf.constant(3))
  assert int(global_step.numpy()) == 3 and logs["loss"].shape == (3,)
  assert np.all(np.isfinite(logs["loss"].numpy())) and logs["loss"][2] < logs["loss"][0]
  assert not np.allclose(before.numpy(), start)


def test_debug_toy_keras_model_trains_the_toy_variant(toy_config):
  with toy_config.unlocked():
    toy_config.model.type = "keras:DebugToyKerasModel"
  toy_config.train.epochs = 3
  train_and_evaluate(toy_config)
  model_dir = toy_config.model.model_dir
  assert read_scalars(model_dir)["loss"][1] == pytest.approx(
    np.log(100), rel=1e-4
  )  # As the toy model starts.
  assert "accuracy" in read_scalars(os.path.join(model_dir, "eval"))
  reader = tf.train.load_checkpoint(model_dir)
  keys = reader.get_variable_to_shape_map()
  assert keys["hidden/kernel"] == [1, 50] and "probabilities/bias/Adam_1" in keys
  assert reader.get_tensor("global_step") == 3


YAML = """\
model:
  type: 'keras:KerasModel'
  builder: 'tests.models.keras_builders:{builder}'
  loss: sparse_categorical_crossentropy
  optimizer: adam
  learning_rate: 0.01
  metrics: [accuracy, sparse_top_k_categorical_accuracy]
  label: label
train:
  epochs: 2
  save_checkpoint_steps: 1
  validation_secs: 3600
  save_summary_steps: 1
  train_feeder:
    type: 'TFRecordExamplesFeeder'
    batch_size: 5
    file_patterns: ['${{deephub_data_dir}}/toy/train-*']
    features_map: {{number: {{type: FixedLenFeature, shape: [], dtype: int64}}}}
    labels_map: {{label: {{type: FixedLenFeature, shape: [], dtype: int64}}}}
  eval_feeder:
    type: 'TFRecordExamplesFeeder'
    batch_size: 5
    file_patterns: ['${{deephub_data_dir}}/toy/validation-*']
    features_map: {{number: {{type: FixedLenFeature, shape: [], dtype: int64}}}}
    labels_map: {{label: {{type: FixedLenFeature, shape: [], dtype: int64}}}}
runtime:
  xla_on_cpu: True
"""


def _loss_steps(logdir):
  """The step of every `loss` event in logdir's event files, with repeats, sorted."""
  steps = []
  for path in tf.io.gfile.glob(os.path.join(logdir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      steps += [event.step for value in event.summary.value if value.tag == "loss"]
  return sorted(steps)


@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_train_resume_evaluate_export_predict_through_the_cli(tmp_path, builder):
  variant = tmp_path / f"keras_{builder}.yaml"
  variant.write_text(YAML.format(builder=builder))
  model_dir = str(tmp_path / "model")
  common = [str(variant), "-p", "model.model_dir", model_dir]

  first = run_deep("trainer", "train", *common)  # 2 epochs of 2 batches: 4 steps.
  assert first.returncode == 0, first.stderr
  weights = tf.train.load_checkpoint(model_dir).get_tensor(
    "hidden/kernel" if builder == "functional" else "seq/dense/kernel"
  )
  resumed = run_deep("trainer", "train", *common, "-p", "train.epochs", "4")
  assert resumed.returncode == 0, resumed.stderr
  reader = tf.train.load_checkpoint(model_dir)
  assert reader.get_tensor("global_step") == 8
  assert reader.get_tensor("beta1_power") == pytest.approx(0.9**9)  # Adam's count went on: 8 updates.
  assert not np.allclose(
    weights, reader.get_tensor("hidden/kernel" if builder == "functional" else "seq/dense/kernel")
  )
  # Steps 1-4 from the first run, 5-8 from the resumed one: none trained twice.
  assert _loss_steps(model_dir) == list(range(1, 9))

  evaluated = run_deep("trainer", "evaluate", *common)
  assert evaluated.returncode == 0, evaluated.stderr
  assert "global_step = 8" in evaluated.stderr and "sparse_top_k_categorical_accuracy = " in evaluated.stderr
  eval_scalars = read_scalars(os.path.join(model_dir, "eval"))
  assert 0.0 <= eval_scalars["accuracy"][8] <= 1.0

  exported = run_deep("trainer", "export", *common)
  assert exported.returncode == 0, exported.stderr
  export_dir = exported.stderr.split(" to ")[-1].split()[0]
  served = tf.saved_model.load(export_dir).signatures["predict_raw"](number=tf.constant([1, 2], tf.int64))
  assert served["predictions"].shape == (2, 100)

  output = str(tmp_path / "predictions.jsonl")
  predicted = run_deep("trainer", "predict", *common, "-o", output)
  assert predicted.returncode == 0, predicted.stderr
  rows = [json.loads(line) for line in open(output)]
  assert len(rows) == 10 and set(rows[0]) == {"predictions"} and len(rows[0]["predictions"]) == 100
  assert sum(rows[0]["predictions"]) == pytest.approx(1.0, rel=1e-4)


def test_a_bad_builder_through_the_cli_is_one_line(tmp_path):
  variant = tmp_path / "bad.yaml"
  variant.write_text(YAML.format(builder="nope"))
  result = run_deep("trainer", "train", str(variant), "-p", "model.model_dir", str(tmp_path / "m"))
  assert result.returncode == 2, result.stderr
  assert "Traceback" not in result.stderr
  assert "model.builder is 'tests.models.keras_builders:nope'" in result.stderr

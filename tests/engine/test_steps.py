"""The compiled train loop and eval pass hold no op that calls back into Python."""

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine.steps import make_evaluate, make_train_loop
from deephub.io import make_feeder
from deephub.models import build_model
from tests.conftest import run_cli
from tests.graphs import dataset_graph, python_ops


def _parts(config):
  feeder = make_feeder(config.train.train_feeder)
  model = build_model(config.model, feature_names=feeder.feature_names, label_names=feeder.label_names)
  model.build(feeder.dataset(epochs=1).element_spec[0])
  optimizer = model.optimizer()
  optimizer.build(model.trainable_variables)
  return feeder, model, optimizer


@pytest.mark.parametrize("xla", [True, False])
def test_train_loop_graph_runs_only_tensorflow_kernels(toy_config, xla):
  feeder, model, optimizer = _parts(toy_config)
  global_step = tf.Variable(0, dtype=tf.int64)
  train_loop = make_train_loop(model, optimizer, global_step, xla=xla, strategy=tf.distribute.get_strategy())
  iterator = iter(feeder.dataset(epochs=None))
  graph = train_loop.get_concrete_function(iterator, tf.constant(2)).graph.as_graph_def()
  assert "While" in {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
  assert python_ops(graph) == set()
  assert train_loop(iterator, tf.constant(2))["loss"].shape == (2,)  # The inspected function runs.


def test_evaluate_graph_runs_only_tensorflow_kernels(toy_config):
  feeder, model, _ = _parts(toy_config)
  evaluate = make_evaluate(model)
  dataset = feeder.dataset(epochs=1)
  chunk = evaluate.chunk.get_concrete_function(
    iter(dataset), evaluate.zeros(dataset.element_spec), tf.constant(2)
  )
  assert python_ops(chunk.graph.as_graph_def()) == set()


def test_evaluate_adds_up_the_same_in_any_chunk_size_and_stops_between_chunks(toy_config):
  toy_config.train.train_feeder.batch_size = 3  # 10 records: batches of 3, 3, 3 and 1.
  feeder, model, _ = _parts(toy_config)
  dataset = feeder.dataset(epochs=1)
  results = [make_evaluate(model, batches_per_call=n)(dataset) for n in (1, 2, 4, 100)]
  for other in results[1:]:  # Same additions in the same order: bit-identical.
    assert {k: float(v) for k, v in other.items()} == {k: float(v) for k, v in results[0].items()}
  losses = [
    float(model.loss(labels, model(features, training=False)).numpy().mean()) for features, labels in dataset
  ]
  assert float(results[0]["loss"]) == pytest.approx((3 * sum(losses[:3]) + losses[3]) / 10, rel=1e-6)

  asked = []

  def stop_after_two_chunks():
    asked.append(len(asked))
    return len(asked) > 2

  assert make_evaluate(model, batches_per_call=1)(dataset, should_stop=stop_after_two_chunks) is None
  assert len(asked) == 3  # Asked before each chunk: two ran, the third did not.


@pytest.mark.parametrize(
  "wrap",
  [
    lambda x: tf.py_function(lambda v: v * 2, [x], tf.float32),
    lambda x: tf.numpy_function(lambda v: v * 2, [x], tf.float32),
  ],
)
def test_the_inspection_finds_python_callbacks(wrap):
  # The checks above are only worth something if they can fail.
  step = tf.function(lambda x: wrap(x) + 1.0)
  assert python_ops(step.get_concrete_function(tf.TensorSpec([3])).graph.as_graph_def())
  dataset = tf.data.Dataset.from_tensor_slices(np.zeros([4], np.float32)).map(wrap)
  assert python_ops(dataset_graph(dataset))


@pytest.mark.parametrize("xla", [True, False])
def test_train_summaries_are_computed_on_summary_steps_only(toy_config, xla):
  toy_config.train.train_feeder.shuffle = False
  runs = {}
  for summary_steps in (1, 3):
    feeder, model, optimizer = _parts(toy_config)  # Constant initial weights: both runs match.
    global_step = tf.Variable(0, dtype=tf.int64)
    train_loop = make_train_loop(
      model,
      optimizer,
      global_step,
      xla=xla,
      strategy=tf.distribute.get_strategy(),
      summary_steps=summary_steps,
    )
    iterator = iter(feeder.dataset(epochs=None))
    # Two loops, so the due steps (3, 6) fall at different places in each.
    loops = [train_loop(iterator, tf.constant(n)) for n in (4, 3)]
    runs[summary_steps] = {name: np.concatenate([logs[name] for logs in loops]) for name in loops[0]}
  every, sparse = runs[1], runs[3]
  due = np.array([step % 3 == 0 for step in range(1, 8)])
  for name in ("training_accuracy", "learning_rate"):
    assert np.isnan(sparse[name][~due]).all(), name
    np.testing.assert_allclose(sparse[name][due], every[name][due], rtol=1e-6, err_msg=name)
    assert np.isfinite(every[name]).all(), name
  np.testing.assert_allclose(sparse["loss"], every["loss"], rtol=1e-6)


def test_model_code_is_autograph_converted_only_with_runtime_autograph(toy_config):
  feeder, model, optimizer = _parts(toy_config)
  plain_loss = model.loss

  def loss(labels, outputs):
    losses = plain_loss(labels, outputs)
    if tf.reduce_sum(losses) < 0:  # A Python `if` on a tensor: only AutoGraph can trace it.
      losses = -losses
    return losses

  model.loss = loss
  strategy = tf.distribute.get_strategy()
  iterator = iter(feeder.dataset(epochs=None))
  converted = make_train_loop(model, optimizer, tf.Variable(0, dtype=tf.int64), xla=False, strategy=strategy,
                              autograph=True)  # fmt: skip
  assert converted(iterator, tf.constant(2))["loss"].shape == (2,)
  plain = make_train_loop(model, optimizer, tf.Variable(0, dtype=tf.int64), xla=False, strategy=strategy)
  with pytest.raises(tf.errors.OperatorNotAllowedInGraphError):
    plain(iterator, tf.constant(2))


def test_python_control_flow_without_autograph_is_one_line_with_the_fix(tmp_path):
  model_type = "tests.engine.python_control_flow:PythonIfToyModel"
  common = ("--variant=toy", f"--config.model.type={model_type}", "--config.train.epochs=1")
  refused = run_cli(*common, f"--config.model.model_dir={tmp_path / 'plain'}")
  assert refused.returncode == 2, refused.stderr[-3000:]
  assert "Traceback" not in refused.stderr
  [line] = [line for line in refused.stderr.splitlines() if line.startswith("deephub: error:")]
  assert f"model {model_type} branches or loops in Python on a tensor" in line
  assert line.endswith(
    "set runtime.autograph: True (--config.runtime.autograph=True) so the step converts that code"
  )
  converted = run_cli(
    *common, "--config.runtime.autograph=True", f"--config.model.model_dir={tmp_path / 'converted'}"
  )
  assert converted.returncode == 0, converted.stderr[-3000:]

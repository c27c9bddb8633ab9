"""The compiled train loop and eval pass hold no op that calls back into Python."""

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine.steps import make_evaluate, make_train_loop
from deephub.io import make_feeder
from deephub.models import build_model
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
  graph = evaluate.get_concrete_function(feeder.dataset(epochs=1)).graph.as_graph_def()
  assert python_ops(graph) == set()


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

"""The TFRecord feeder's pipeline runs only C++ kernels: no Python callback per element."""

import pytest

from deephub.io import make_feeder
from tests.graphs import dataset_graph, op_types, python_ops


@pytest.mark.parametrize("shuffle", [False, True])
def test_feeder_pipeline_holds_no_python_ops(toy_config, shuffle):
  toy_config.train.train_feeder.shuffle = shuffle
  feeder = make_feeder(toy_config.train.train_feeder, seed=1)
  graph = dataset_graph(feeder.dataset(epochs=None))
  types = op_types(graph)
  # Batched parsing and prefetching are in the graph the check looked at.
  assert {"ParseExampleV2", "PrefetchDataset", "ParallelMapDatasetV2"} <= types
  assert python_ops(graph) == set()

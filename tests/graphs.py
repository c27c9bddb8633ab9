"""Test helper: which ops a graph (and every function in its library) runs."""

from tensorflow.core.framework import graph_pb2

# Ops that call back into Python: `tf.py_function`, `tf.numpy_function`, `tf.compat.v1.py_func`.
PYTHON_OPS = frozenset({"EagerPyFunc", "PyFunc", "PyFuncStateless"})


def op_types(graph_def: graph_pb2.GraphDef) -> set[str]:
  """Op types of the graph's nodes and of all its library functions' nodes."""
  types = {node.op for node in graph_def.node}
  for function in graph_def.library.function:
    types.update(node.op for node in function.node_def)
  return types


def python_ops(graph_def: graph_pb2.GraphDef) -> set[str]:
  """The Python-calling op types the graph holds (empty when it runs only C++ kernels)."""
  return op_types(graph_def) & PYTHON_OPS


def dataset_graph(dataset) -> graph_pb2.GraphDef:
  """The GraphDef tf.data serialises for `dataset` (with its map functions)."""
  return graph_pb2.GraphDef.FromString(dataset._as_serialized_graph().numpy())

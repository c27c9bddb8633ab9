"""A model whose loss uses a Python `if` on a tensor: only AutoGraph can trace it (`runtime.autograph`)."""

import tensorflow as tf

from deephub.models.registry.toy import DebugToyModel


class PythonIfToyModel(DebugToyModel):
  """The toy model, with a loss that branches in Python on a tensor's value."""

  def loss(self, labels, outputs):
    losses = super().loss(labels, outputs)
    if tf.reduce_sum(losses) < 0:  # Never true; tracing it needs AutoGraph.
      losses = -losses
    return losses

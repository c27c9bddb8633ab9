"""Scalar summaries that both TensorBoard and Estimator-era readers see.

TF2's `tf.summary.scalar` writes tensor summaries, which TF1 readers that look
for `simple_value` (e.g. `tf.estimator.BestExporter`) skip. Writing a TF1
`Summary` proto through `write_raw_pb` serves both.
"""

from collections.abc import Mapping

import tensorflow as tf


class ScalarWriter:
  """Writes `{tag: value}` mappings at a step into one event-file folder."""

  def __init__(self, logdir: str):
    self.logdir = logdir
    self._writer = tf.summary.create_file_writer(logdir)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    """Writes all scalars as one event at `step`."""
    summary = tf.compat.v1.Summary(
      value=[tf.compat.v1.Summary.Value(tag=tag, simple_value=float(value)) for tag, value in scalars.items()]
    )
    with self._writer.as_default():
      tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()

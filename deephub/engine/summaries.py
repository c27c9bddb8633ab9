"""Scalar summaries that both TensorBoard and Estimator-era readers see.

TF2's `tf.summary.scalar` writes tensor summaries, which TF1 readers that look
for `simple_value` (e.g. `tf.estimator.BestExporter`) skip. Writing a TF1
`Summary` proto through `write_raw_pb` serves both.

A resumed run marks its restart with a `SessionLog(START)` event, as an
Estimator did, so TensorBoard drops the steps a killed run wrote past its
last checkpoint instead of showing them twice.
"""

import time
from collections.abc import Mapping

import tensorflow as tf
from tensorflow.core.util import event_pb2


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

  def write_session_start(self, step: int) -> None:
    """Marks a restart at `step`: TensorBoard drops what earlier runs wrote at `step` and after.

    TensorBoard takes the first START of a run folder as the first session
    and purges only on later ones; a folder written by an older deephub has
    none, so the mark is written twice, and the second always purges.
    """
    event = event_pb2.Event(
      step=step, wall_time=time.time(), session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)
    ).SerializeToString()
    for _ in range(2):
      # ImportEvent appends a whole Event; `_resource` is the writer's handle
      # (tf.summary has no public call for a SessionLog).
      tf.raw_ops.ImportEvent(writer=self._writer._resource, event=tf.constant(event))
    self._writer.flush()

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()

"""The train iterator's position as a checkpoint entry.

tf.data serializes an iterator's state (file offsets, shuffle buffer and RNG
state) into a variant tensor, saved in a side bundle `model.ckpt-N.input_state`
written before the state file points at `model.ckpt-N`. Saving it with the
weights makes resume exact: the next batch after a restart is the one the
killed run would have read next.
"""

import tensorflow as tf
from absl import logging

from deephub.engine.checkpoint import Entry

# Checkpoint key of the input position; Estimators ignore keys they do not own.
INPUT_STATE_KEY = "deephub/train_input_state"
INPUT_STATE_BUNDLE = ".input_state"
# Our feeders' only "external" state is the seed generator of each pass's
# shuffle, whose seed is fixed by (seed, epoch); nothing is lost by ignoring it.
# (Python functions, the other kind, are not allowed in our pipelines.)
_IGNORE_EXTERNAL_STATE = 1


def iterator_entry(iterator) -> Entry | None:
  """Returns an Entry for `iterator`, or None when its pipeline cannot be saved.

  A pipeline that cannot serialize its position (a tf.data service, a
  distributed iterator) gets None; training then resumes at the start of an
  epoch.
  """
  resource = getattr(iterator, "_iterator_resource", None)
  if resource is None:
    logging.warning(
      "train.checkpoint_input_state: this input pipeline cannot be checkpointed; "
      "a resumed run starts its epoch over"
    )
    return None

  def read() -> tf.Tensor:
    return tf.raw_ops.SerializeIterator(
      resource_handle=resource, external_state_policy=_IGNORE_EXTERNAL_STATE
    )

  def assign(value: tf.Tensor) -> None:
    try:
      tf.raw_ops.DeserializeIterator(resource_handle=resource, serialized=value)
    except tf.errors.OpError as error:
      # The config changed the pipeline (files, batch size), or the saved state
      # is damaged (checkpoints carry no checksum check): start the epoch over.
      logging.warning(
        "Could not restore the train input position (%s); the epoch starts over",
        error.message.splitlines()[0][:200],
      )

  try:
    read()
  except tf.errors.OpError as error:
    logging.warning(
      "train.checkpoint_input_state: pipeline cannot be checkpointed (%s); a resumed run "
      "starts its epoch over",
      error.message.splitlines()[0][:200],
    )
    return None
  # A side bundle (model.ckpt-N.input_state.*): TF 2.15's checkpoint reader,
  # which Estimators use, fails on variant tensors in the main bundle.
  return Entry(read=read, assign=assign, dtype=tf.variant, optional=True, bundle=INPUT_STATE_BUNDLE)

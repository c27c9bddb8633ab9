"""Reading scalars back from event files, as Estimator-era tools did.

Early stopping, the best exporter, the best-checkpoint copier and
metrics.csv all look at what earlier evaluations wrote (possibly in earlier
runs of the same model_dir), so they read the event files rather than keep
their own state. Only TF1 `simple_value` scalars are read: that is what
`ScalarWriter` writes and what Estimator's own readers understood.
"""

import os

import tensorflow as tf

# Scalars by step: {step: {tag: value}}.
History = dict[int, dict[str, float]]


def read_scalars(logdir: str) -> History:
  """Returns every `simple_value` scalar in the event files directly in `logdir`.

  Files are read oldest first, so where a resumed run rewrote a step the
  newest value wins. A missing folder gives an empty history.
  """
  history: History = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    # Plain TFRecord reads: `tf.compat.v1.train.summary_iterator` prints a
    # deprecation warning (it wraps tf_record_iterator) on every first use.
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.HasField("simple_value"):
          history.setdefault(int(event.step), {})[value.tag] = float(value.simple_value)
  return dict(sorted(history.items()))


def is_better(value: float, best: float | None, *, higher_is_better: bool) -> bool:
  """True when `value` strictly improves on `best` (None: nothing to beat yet)."""
  if best is None:
    return True
  return value > best if higher_is_better else value < best

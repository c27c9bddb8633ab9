"""Input feeders: configs in, `tf.data.Dataset`s out.

`FEEDERS` and `make_feeder` live in `deephub.io.feeders` and are loaded on
first use, so that `deephub.io.metadata` (used by `deep utils`) imports
without TensorFlow.
"""

_LAZY = ("FEEDERS", "make_feeder")


def __getattr__(name: str):
  if name in _LAZY:
    from deephub.io import feeders

    return getattr(feeders, name)
  raise AttributeError(f"module 'deephub.io' has no attribute {name!r}")

"""Input feeders: configs in, `tf.data.Dataset`s out.

`FEEDERS` and `make_feeder` live in `deephub.io.feeders` and are loaded on
first use, so that `deephub.io.metadata` (used by `deep utils`) imports
without TensorFlow.
"""

_LAZY = {
  "FEEDERS": "feeders",
  "make_feeder": "feeders",
  "TFRecordExamplesFeeder": "tfrecord",
  "MemorySamplesFeeder": "memory",
  "ParquetExamplesFeeder": "parquet",
}


def __getattr__(name: str):
  if name in _LAZY:
    import importlib

    return getattr(importlib.import_module(f"deephub.io.{_LAZY[name]}"), name)
  raise AttributeError(f"module 'deephub.io' has no attribute {name!r}")

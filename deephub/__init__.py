"""deephub: a TensorFlow 2 experimentation framework.

A *variant* is a config (`ml_collections.ConfigDict`) naming a model, its
training schedule and its input feeders; `deephub.train_and_evaluate(config,
train_feeder=..., eval_feeder=...)` (`deephub/api.py`) trains it into a
model_dir that Estimator-era tools can read, optionally on feeder objects
such as `deephub.io.MemorySamplesFeeder(x, y)`.

`deephub.train` stays the entry-point module (`python -m deephub.train`);
the API is loaded on first use, so `import deephub` imports no TensorFlow.
"""

__version__ = "0.1.0"

# Variant files written before the config package import `from deephub import
# defaults` (or `variants`); both now live in deephub.config. Resolved lazily,
# so `import deephub` stays free of ml_collections.
_MOVED_TO_CONFIG = ("defaults", "variants")


def __getattr__(name: str):
  if name in _MOVED_TO_CONFIG:
    import importlib

    return importlib.import_module(f"deephub.config.{name}")
  if name == "train_and_evaluate":
    from deephub.api import train_and_evaluate

    return train_and_evaluate
  raise AttributeError(f"module 'deephub' has no attribute {name!r}")

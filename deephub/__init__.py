"""deephub: a TensorFlow 2 experimentation framework.

A *variant* is a config (`ml_collections.ConfigDict`) naming a model, its
training schedule and its input feeders; `deephub.engine.train_and_evaluate`
trains it into a model_dir that Estimator-era tools can read.
"""

__version__ = "0.1.0"

"""Toy variant: DebugToyModel on the bundled toy data (10 train records).

Run from any folder:
  python -m deephub.train --variant=toy
It trains 10 epochs of one batch of 10 (10 steps) into runs/toy, evaluates
once at the end on the 10 validation records and writes checkpoints and
TensorBoard summaries. The loss starts at ln(100) = 4.6.
"""

import os

from deephub.config import defaults
from deephub.resources import toy_data_dir


def _toy_feeder(split: str):
  # The documented toy spec: `number` is the feature and the label (the model
  # learns to name its input), as in the old framework's toy files, which have
  # no other feature. The bundled data also holds a `label` equal to `number`.
  number = {"type": "FixedLenFeature", "shape": [1], "dtype": "int64"}
  return defaults.feeder_config(
    batch_size=10,
    file_patterns=[os.path.join(toy_data_dir(), f"{split}-*")],
    features_map={"number": dict(number)},
    labels_map={"number": dict(number)},
  )


def get_config():
  config = defaults.base_config()

  config.model.type = "toy:DebugToyModel"
  # Output classes of the last layer.
  config.model.num_classes = 100
  # Adam learning rate.
  config.model.learning_rate = 0.001
  # Width of the single hidden layer.
  config.model.hidden_neurons = 50

  config.train.epochs = 10
  config.train.save_checkpoint_steps = 100
  config.train.save_checkpoint_secs = None
  config.train.validation_secs = 3600
  config.train.save_summary_steps = 1
  config.train.train_feeder = _toy_feeder("train")
  config.train.train_feeder.shuffle = True
  config.train.eval_feeder = _toy_feeder("validation")

  config.runtime.xla = True
  config.runtime.seed = 42
  return config

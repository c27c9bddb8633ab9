"""MLP variant: MLPClassifier (Glorot-initialised, two hidden layers) on the toy data.

Run from any folder:
  python -m deephub.train --variant=mlp
It trains 300 epochs of one batch of 10 (300 steps, a few seconds on a CPU)
into runs/mlp and memorises the 10 toy train records: `training_accuracy`
climbs from about 0.1 to 1. The validation records hold labels the train
records never show, so eval accuracy stays near 0; point the feeders at your
own data (every `features_map` feature becomes an input column).
"""

import os

from deephub.config import variants


def get_config():
  # The toy variant's schedule and feeders, loaded by path (works installed too).
  config = variants.load_variant("toy", os.path.dirname(os.path.abspath(__file__)))
  config.unlock()

  config.model.type = "mlp:MLPClassifier"
  del config.model.hidden_neurons
  # Width of each hidden layer, input side first.
  config.model.hidden_units = [64, 64]
  # Labels of the toy train and validation records are 0..19.
  config.model.num_classes = 20
  # Adam learning rate; higher than the toy's to memorise in a few hundred steps.
  config.model.learning_rate = 0.01
  # Keras activation of the hidden layers.
  config.model.activation = "relu"
  # Dropout rate after each hidden layer while training; 0 disables it.
  config.model.dropout = 0.0

  config.train.epochs = 300
  config.train.save_summary_steps = 10
  return config

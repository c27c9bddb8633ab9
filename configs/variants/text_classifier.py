"""Text classifier variant: EmbeddingClassifier on the output of `deep preprocessor text`.

From the folder holding train.csv and validation.csv (columns `text`, `label`):
  deep preprocessor text train.csv validation.csv --output-dir data/text
  deep trainer train text_classifier -p model.vocab_size V -p model.num_classes C
with V and C as the preprocessor prints them (it prints the full command,
file names included). It trains 10 epochs into runs/text_classifier,
evaluating on validation.tfr every 10 minutes and at the end (`accuracy`).
"""

from deephub.config import defaults

# Token ids per record: the preprocessor's --max-row-length (default 15).
_ROW_LENGTH = 15


def _text_feeder(split: str):
  return defaults.feeder_config(
    batch_size=32,
    # Written by `deep preprocessor text ... --output-dir data/text`, one
    # file per CSV, relative to the folder you run from.
    file_patterns=[f"data/text/{split}.tfr"],
    features_map={"text": {"type": "FixedLenFeature", "shape": [_ROW_LENGTH], "dtype": "int64"}},
    labels_map={"label": {"type": "FixedLenFeature", "shape": [1], "dtype": "int64"}},
  )


def get_config():
  config = defaults.base_config()

  config.model.type = "text_classifier:EmbeddingClassifier"
  # Rows of the embedding: the size of vocab.json. 0 stops with an error saying so.
  config.model.vocab_size = 0
  # Classes: the size of labels.json. 0 stops with an error saying so.
  config.model.num_classes = 0
  # Adam learning rate.
  config.model.learning_rate = 0.005
  # Width of each token vector.
  config.model.embedding_dim = 32
  # 'mean' or 'max' over the non-padding tokens of a row.
  config.model.pooling = "mean"

  config.train.epochs = 10
  config.train.save_checkpoint_steps = 500
  config.train.validation_secs = 600
  config.train.save_summary_steps = 50
  config.train.log_step_count_steps = 50
  config.train.train_feeder = _text_feeder("train")
  config.train.train_feeder.shuffle = True
  config.train.eval_feeder = _text_feeder("validation")
  return config

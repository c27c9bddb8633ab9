"""`-p KEY VALUE` parsing and assignment onto the locked toy config."""

import pytest

from deephub.config import overrides, variants
from deephub.errors import UserError


@pytest.mark.parametrize(
  "text, expected",
  [
    ("15", 15),
    ("4.0", 4.0),
    ('[1, "a"]', [1, "a"]),
    ("False", False),
    ("true", True),
    ("null", None),
    ("None", None),
    ("{'a': 1}", {"a": 1}),
    ("deephub/resources/blobs/data/toy/train-*", "deephub/resources/blobs/data/toy/train-*"),
    ("/data/*.tfrecord", "/data/*.tfrecord"),
    ("2024-01-01", "2024-01-01"),  # YAML would make a date; dates stay text.
    ("__import__('os').system('false')", "__import__('os').system('false')"),  # Text, never run.
    ("!!python/object/apply:os.system ['false']", "!!python/object/apply:os.system ['false']"),
  ],
)
def test_parse_value(text, expected):
  assert overrides.parse_value(text) == expected


@pytest.fixture
def config():
  return variants.load_variant("toy")


@pytest.mark.parametrize(
  "key, text, expected",
  [
    ("train.epochs", "15", 15),
    ("model.learning_rate", "4", 4.0),
    ("model.model_dir", "2024", "2024"),  # A string field keeps the text.
    ("train.train_feeder.file_patterns", "data/train-*", ["data/train-*"]),
    ("train.train_feeder.file_patterns", "['a-*', 'b-*']", ["a-*", "b-*"]),
    ("train.train_feeder.shuffle", "False", False),
    ("train.train_feeder.shuffle", "global", "global"),  # A bool or the word.
    ("train.save_checkpoint_secs", "60", 60),
    ("train.save_checkpoint_steps", "None", None),
    ("train.train_feeder.features_map.number.dtype", "float32", "float32"),
  ],
)
def test_apply_overrides_sets_typed_values(config, key, text, expected):
  overrides.apply_overrides(config, [(key, text)])
  value = config
  for part in key.split("."):
    value = value[part]
  assert value == expected
  assert type(value) is type(expected)


def test_later_override_wins(config):
  overrides.apply_overrides(config, [("train.epochs", "2"), ("train.epochs", "3")])
  assert config.train.epochs == 3


@pytest.mark.parametrize(
  "key, text, message",
  [
    ("train.epoch", "3", r"unknown config key 'train.epoch'; closest: 'train.epochs'"),
    ("model.hidden_neuron", "3", r"closest: 'model.hidden_neurons'"),
    ("train.epochs", "many", r"-p train.epochs 'many': the field holds int"),
    ("train.train_feeder.shuffle", "1", r"expected True or False"),
  ],
)
def test_apply_overrides_errors(config, key, text, message):
  with pytest.raises(UserError, match=message):
    overrides.apply_overrides(config, [(key, text)])

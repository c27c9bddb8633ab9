"""Variant lookup, key checks and the recorded config."""

import json

import pytest
import yaml

from deephub.config import variants
from deephub.errors import UserError


def test_toy_variant_mirrors_the_legacy_keys():
  config = variants.load_variant("toy")
  assert config.model.type == "toy:DebugToyModel"
  assert (config.model.num_classes, config.model.learning_rate, config.model.hidden_neurons) == (
    100,
    0.001,
    50,
  )
  train = config.train
  assert (train.epochs, train.save_checkpoint_steps, train.save_checkpoint_secs) == (10, 100, None)
  assert (train.validation_secs, train.save_summary_steps) == (3600, 1)
  assert config.runtime.xla is True
  feeder = train.train_feeder
  assert feeder.type == "TFRecordExamplesFeeder"
  # The documented toy spec: `number` is the feature and the label.
  number = {"type": "FixedLenFeature", "shape": [1], "dtype": "int64"}
  assert feeder.features_map.to_dict() == {"number": number}
  assert feeder.labels_map.to_dict() == {"number": number}
  for key in ("batch_size", "shuffle", "file_patterns", "max_examples", "drop_remainder", "compression"):
    assert key in feeder


def test_config_is_locked():
  config = variants.load_variant("toy")
  with pytest.raises(AttributeError):
    config.model.hiden_neurons = 5
  with pytest.raises(TypeError):
    config.train.epochs = "ten"


@pytest.mark.parametrize(
  "key, closest",
  [
    ("model.hiden_neurons", "'model.hidden_neurons'"),
    ("train.train_feeder.batchsize", "'train.train_feeder.batch_size'"),
    ("runtime.xl", "'runtime.xla'"),
  ],
)
def test_unknown_key_names_closest(key, closest):
  with pytest.raises(UserError, match=f"unknown config key '{key}'; closest: .*{closest}"):
    variants.check_key(variants.load_variant("toy"), key)


def test_nested_keys_are_known():
  config = variants.load_variant("toy")
  variants.check_key(config, "train.train_feeder.features_map.number.shape")
  variants.check_key(config, "model.hidden_neurons")


def test_unknown_variant_lists_available(tmp_path):
  (tmp_path / "mine.py").write_text("def get_config(): pass\n")
  with pytest.raises(UserError, match="Cannot find variant with name 'mien'.*'mine'"):
    variants.find_variant("mien", str(tmp_path))


def test_resolved_config_files(tmp_path):
  config = variants.load_variant("toy")
  variants.write_resolved_config(config, str(tmp_path))
  as_json = json.loads((tmp_path / "config.json").read_text())
  assert as_json == config.to_dict()
  # Plain YAML: a safe loader reads it back (no Python object tags).
  assert yaml.safe_load((tmp_path / "experiment_params.yaml").read_text()) == as_json

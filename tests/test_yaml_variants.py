"""YAML variants: parity with Python variants, metayaml features, and the safety check."""

import os
import sys
import textwrap

import pytest

from deephub import variants, yaml_variants
from deephub.errors import UserError
from deephub.resources import toy_data_dir


def write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(textwrap.dedent(text))
  return str(path)


def test_toy_yaml_is_the_toy_py_config():
  from_py = variants.load_variant("toy")
  from_yaml = variants.load_variant("toy.yaml")
  assert from_yaml.to_dict() == from_py.to_dict()
  assert from_yaml.is_locked


def test_py_wins_over_yaml_and_yaml_is_found_alone(tmp_path):
  write(
    tmp_path / "both.py", "from deephub import defaults\ndef get_config():\n  return defaults.base_config()\n"
  )
  write(tmp_path / "both.yaml", "model: {type: 'toy:DebugToyModel'}\n")
  write(tmp_path / "only.yaml", "model: {type: 'toy:DebugToyModel'}\n")
  assert variants.find_variant("both", str(tmp_path)).endswith("both.py")
  assert variants.find_variant("only", str(tmp_path)).endswith("only.yaml")
  assert variants.available_variants(str(tmp_path)) == ["both", "only"]
  with pytest.raises(UserError, match=r"Cannot find variant with name 'onl' .*'only'"):
    variants.find_variant("onl", str(tmp_path))


def test_extend_merge_order_and_substitution(tmp_path):
  write(
    tmp_path / "feeders" / "base.yaml",
    """
    train:
      epochs: 2
      validation_steps: ${train.epochs}
      train_feeder:
        batch_size: 4
        file_patterns: ['${deephub_data_dir}/toy/train-*']
        features_map:
          x: {type: FixedLenFeature, shape: [2], dtype: float32}
    """,
  )
  path = write(
    tmp_path / "variants" / "v.yaml",
    """
    extend: [../feeders/base.yaml]
    model:
      class_type: DebugToyModel
      module_path: toy
      hidden_neurons: 7
    train:
      epochs: 5
    """,
  )
  config = yaml_variants.load_yaml_variant(path)
  assert config.model.type == "toy:DebugToyModel"
  assert config.model.hidden_neurons == 7
  assert config.train.epochs == 5  # The including file wins over what it extends.
  assert config.train.validation_steps == 2  # ${...} is resolved where it is read.
  assert config.train.train_feeder.batch_size == 4
  assert config.train.train_feeder.file_patterns == [
    os.path.join(os.path.dirname(toy_data_dir()), "toy", "train-*")
  ]
  assert config.train.train_feeder.features_map.x.shape == [2]
  assert config.train.train_feeder.shuffle is False  # Defaults fill what YAML leaves out.
  assert "deephub_data_dir" not in config


@pytest.mark.parametrize(
  "model, expected",
  [
    ({"type": "toy:DebugToyModel"}, "toy:DebugToyModel"),
    (
      {"class_type": "DebugToyModel", "module_path": "deephub.models.registry.toy"},
      "deephub.models.registry.toy:DebugToyModel",
    ),
  ],
)
def test_model_type_spellings(model, expected):
  config = yaml_variants.config_from_definition({"model": model}, path="x.yaml")
  assert config.model.type == expected


@pytest.mark.parametrize(
  "definition, message",
  [
    ({"trian": {}}, r"unknown key 'trian'; closest: 'train'"),
    ({"train": {"epoch": 3}}, r"unknown key 'train.epoch'; closest: 'train.epochs'"),
    ({"train": {"epochs": "ten"}}, r"train.epochs = 'ten'"),
    ({"model": {"type": "a:B", "class_type": "B"}}, r"use either type"),
    # A new model parameter holding a mapping with a dotted key (found by hypothesis).
    ({"model": {"type": "a:B", "extra": {"a.b": None}}}, r"model.extra = \{'a.b': None\}: .*dots"),
  ],
)
def test_definition_errors(definition, message):
  with pytest.raises(UserError, match=message):
    yaml_variants.config_from_definition(definition, path="x.yaml")


UNSAFE = [
  "!!python/object/apply:os.system ['touch {marker}']",
  "!!python/object/apply:subprocess.call [['touch', '{marker}']]",
  "!!python/name:os.system",
  "'${{ cp.__globals__.os.system(\"touch {marker}\") }}'",
  '\'${{ (cp|attr("_" ~ "_globals__")).os.system("touch {marker}") }}\'',
  "'${{ \"{marker}\".__class__ }}'",
  "'$( cp.__globals__.os.system(\"touch {marker}\") )'",
  "'{{% for x in [1] %}}${{ x }}{{% endfor %}}'",
]


@pytest.mark.parametrize("payload", UNSAFE)
@pytest.mark.parametrize("where", ["variant", "extended", "extended twice"])
def test_unsafe_yaml_is_refused_before_anything_runs(tmp_path, payload, where):
  marker = tmp_path / "pwned"
  bad = f"train:\n  epochs: 1\nmodel:\n  note: {payload.format(marker=marker)}\n"
  files = {"variant": "model: {type: 'toy:DebugToyModel'}\n", "extended": "", "extended twice": ""}
  files[where] = bad
  write(tmp_path / "leaf" / "twice.yaml", files["extended twice"] or "train: {epochs: 2}\n")
  write(
    tmp_path / "mid" / "once.yaml",
    (files["extended"] or "train: {epochs: 3}\n") + "extend: [../leaf/twice.yaml]\n",
  )
  path = write(tmp_path / "v" / "variant.yaml", files["variant"] + "extend: [../mid/once.yaml]\n")
  with pytest.raises(UserError, match=r"is refused"):
    variants.load_variant("variant", str(tmp_path / "v"))
  assert not marker.exists()
  # metayaml (which ran these payloads when it read the file) is no longer a
  # dependency and is never imported; its format is read by deephub itself.
  assert "metayaml" not in sys.modules, path


def test_extend_through_a_template_is_refused(tmp_path):
  path = write(tmp_path / "v.yaml", "extend: ['${model.x}.yaml']\n")
  with pytest.raises(UserError, match=r"must be a plain file path"):
    yaml_variants.check_safe(path)


def test_missing_extended_file_names_it(tmp_path):
  path = write(tmp_path / "v.yaml", "extend: [nope.yaml]\n")
  with pytest.raises(UserError, match=r"'nope.yaml' matches no file"):
    yaml_variants.check_safe(path)


def test_check_safe_lists_the_chain():
  path = variants.find_variant("toy.yaml")
  chain = yaml_variants.check_safe(path)
  assert [os.path.basename(p) for p in chain] == ["toy.yaml", "feeder_toy_train.yaml", "feeder_toy_eval.yaml"]

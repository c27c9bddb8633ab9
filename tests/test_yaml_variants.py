"""YAML variants: parity with Python variants, metayaml features, and the safety check."""

import os
import sys
import textwrap

import pytest

from deephub.config import variants, yaml_variants
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


def test_metayaml_features_merge_as_metayaml_did(tmp_path):
  # The expected dict is what metayaml 1.2 produced for these files (checked
  # once, side by side), except `copy`: metayaml aliased the mapping, so a
  # later file's change to `shared` showed through; deephub copies the value
  # the template saw.
  write(
    tmp_path / "base.yaml",
    """
    train:
      epochs: 2
      validation_steps: ${train.epochs}
      doubled: ${train.epochs * 2}
      half: ${train.epochs / 4}
      label: run-${train.epochs}
      joined: ${'a' ~ train.epochs}
      numtext: ${train.epochs ~ 5}
      lst: [1, 2, '${train.epochs}']
      keep: 5
      gone: 7
      remove_all: {x: 1, y: 2}
      nested: {a: {b: {c: 3}}}
      exlist: [1, 2]
    shared: {p: 1, q: {r: 2}}
    """,
  )
  write(
    tmp_path / "mid.yaml",
    """
    extend: base.yaml
    train:
      epochs: 5
      gone: ${__del__}
      remove_all:
        ${__del_all__}: 1
        z: 3
      exlist:
        ${__extend__}: [3, '${train.epochs}']
      ref: $(shared)
      refq: $(shared.q.r)
      reftext: x-$(train.epochs)
      inh:
        ${__inherit__}: shared
        p: 9
      copy: ${shared}
      nested: {a: {b: {d: 4}}}
    """,
  )
  path = write(tmp_path / "top.yaml", "extend: [mid.yaml]\nshared: {p: 2}\nmodel:\n  k: ${train.keep + 1}\n")
  assert yaml_variants.read_definition(path) == {
    "model": {"k": 6},
    "shared": {"p": 2, "q": {"r": 2}},
    "train": {
      "copy": {"p": 1, "q": {"r": 2}}, "doubled": 4, "epochs": 5, "exlist": [1, 2, 3, 5], "half": 0.5,
      "inh": {"p": 9, "q": {"r": 2}}, "joined": "a2", "keep": 5, "label": "run-2", "lst": [1, 2, 2],
      "nested": {"a": {"b": {"c": 3, "d": 4}}}, "numtext": 25, "ref": {"p": 2, "q": {"r": 2}}, "refq": 2,
      "reftext": "x-5", "remove_all": {"z": 3}, "validation_steps": 2,
    },
  }  # fmt: skip


def test_globs_are_sorted_and_a_diamond_is_read_once(tmp_path):
  write(tmp_path / "parts" / "b.yaml", "extend: ../common.yaml\ntrain: {epochs: 2}\n")
  write(tmp_path / "parts" / "a.yaml", "extend: ../common.yaml\ntrain: {epochs: 1}\n")
  write(tmp_path / "common.yaml", "train: {epochs: 9, batch: 3}\n")
  path = write(tmp_path / "v.yaml", "extend: ['parts/*.yaml']\n")
  assert [os.path.basename(p) for p in yaml_variants.check_safe(path)] == [
    "v.yaml", "a.yaml", "common.yaml", "b.yaml",
  ]  # fmt: skip
  assert yaml_variants.read_definition(path) == {"train": {"epochs": 2, "batch": 3}}


@pytest.mark.parametrize(
  "text, message",
  [
    ("a: $(b)\nb: $(a)\n", r"a refers to itself through \$\(...\) references"),
    ("a: {x: $(a)}\n", r"a.x refers to itself"),
    ("a: {'${b}': 1}\n", r"a key under a is refused: templates in keys"),
    ("a: ${b}$(c)\n", r"a is refused: a value mixes"),
    ("a: 1\nb: {'${__inherit__}': a}\n", r"b inherits a int; name a mapping"),
    ("a: [1]\nb: ${a.x}\n", r"b: 'x' is not an index of a list of 1"),
    ("a: 'x'\nb: ${a.x}\n", r"b: cannot look up 'x' in a str"),
    ("extend: 3\n", r"extend must be a file path or a list"),
  ],
)
def test_merge_errors_name_the_file_and_key(tmp_path, text, message):
  path = write(tmp_path / "v.yaml", text)
  with pytest.raises(UserError, match=message) as error:
    yaml_variants.read_definition(path)
  assert str(error.value).startswith(path)


def test_exponential_copies_hit_the_value_budget(tmp_path, monkeypatch):
  monkeypatch.setattr(yaml_variants, "MAX_VALUES", 10_000)  # The same check, reached sooner.
  # Each level copies the one below twice: 2**40 values if nothing stopped it.
  lines = ["l0: [0, 0]"] + [f"l{i}: ['${{l{i - 1}}}', '${{l{i - 1}}}']" for i in range(1, 40)]
  path = write(tmp_path / "v.yaml", "\n".join(lines) + "\n")
  with pytest.raises(UserError, match=r"builds over 10000 values"):
    yaml_variants.read_definition(path)


def test_exponential_references_hit_the_value_budget(tmp_path, monkeypatch):
  monkeypatch.setattr(yaml_variants, "MAX_VALUES", 10_000)
  # 4**15 values, through 15 levels of references (under the 16-level cap).
  lines = ["l0: [0, 0, 0, 0]"] + [f"l{i}: [{', '.join([f'$(l{i - 1})'] * 4)}]" for i in range(1, 16)]
  path = write(tmp_path / "v.yaml", "\n".join(lines) + "\n")
  with pytest.raises(UserError, match=r"builds over 10000 values"):
    yaml_variants.read_definition(path)


def test_a_mapping_cannot_merge_into_a_number(tmp_path):
  write(tmp_path / "base.yaml", "train: {epochs: 2}\n")
  path = write(tmp_path / "v.yaml", "extend: base.yaml\ntrain: {epochs: {x: 1}}\n")
  with pytest.raises(UserError, match=r"v.yaml: train.epochs is a mapping; it cannot merge into a int"):
    yaml_variants.read_definition(path)


@pytest.mark.parametrize("levels, error", [(16, None), (17, r"a17: \$\(...\) references nest deeper .* 16")])
def test_reference_chains_are_bounded(tmp_path, levels, error):
  # Each reference is also a 31-deep expression: the deepest Python recursion a variant can ask for.
  lines = ["a0: 1"] + [f"a{i}: $({'-' * 30}a{i - 1})" for i in range(1, levels + 1)]
  path = write(tmp_path / "v.yaml", "\n".join(lines) + "\n")
  if error is None:
    assert yaml_variants.read_definition(path)[f"a{levels}"] == 1
  else:
    with pytest.raises(UserError, match=error):
      yaml_variants.read_definition(path)

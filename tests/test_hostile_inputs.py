"""Property tests: any override or YAML text yields a config or a UserError, never code execution.

Each payload tries to create a sentinel file; the tests assert it never appears.
"""

import os
import sys

import pytest
import yaml
from absl import flags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deephub import train
from deephub.config import overrides, variants, yaml_variants
from deephub.errors import UserError

SENTINEL = "/tmp/deephub_pwned_sentinel"
PAYLOADS = [
  f"__import__('os').system('touch {SENTINEL}')",
  f"!!python/object/apply:os.system ['touch {SENTINEL}']",
  f"${{ cp.__globals__.os.system('touch {SENTINEL}') }}",
  "{{ ''.__class__.__mro__[1].__subclasses__() }}",
  f"exec(\"open('{SENTINEL}', 'w')\")",
]
# Keys of every kind the toy config holds: int, float, bool, str, list, optional int, dict.
KEYS = [
  "model.hidden_neurons", "model.learning_rate", "runtime.xla", "model.type",
  "train.train_feeder.file_patterns", "train.save_checkpoint_secs", "train.train_feeder.features_map",
  "train.epochs", "train.nan_policy", "no.such.key",
]  # fmt: skip
TEXT = st.one_of(st.text(max_size=40), st.sampled_from([*PAYLOADS, "#", "", "!!python/name:os.system"]))
HYPOTHESIS = settings(
  max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def no_sentinel():
  if os.path.exists(SENTINEL):
    os.remove(SENTINEL)
  yield
  assert not os.path.exists(SENTINEL), "an input was executed as code"


@HYPOTHESIS
@given(key=st.sampled_from(KEYS), text=TEXT)
def test_p_values_give_a_config_or_a_user_error(key, text):
  # Plain data only, never an object built from the text ('#' or '' parse to None).
  literal = (type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)
  assert isinstance(overrides.parse_value(text), literal)
  config = variants.load_variant("toy")
  try:
    overrides.apply_overrides(config, [(key, text)])
  except UserError as error:
    assert "\n" not in str(error).strip()


@HYPOTHESIS
@given(key=st.sampled_from(KEYS), text=TEXT.filter(lambda t: "\x00" not in t))
def test_config_flag_overrides_give_a_config_or_a_one_line_exit(key, text, capsys, monkeypatch):
  argv = ["deephub.train", "--variant=toy", f"--config.{key}={text}"]
  monkeypatch.setattr(sys, "argv", argv)  # ml-collections finds overrides in sys.argv.
  flag_values = flags.FlagValues()
  train.define_flags(flag_values)
  try:
    train.parse_flags(argv, flag_values)
  except SystemExit as exit_:
    assert exit_.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deephub: error:"), lines
    return
  assert key != "no.such.key"
  flag_values.config  # noqa: B018 - reading it must not raise.


def _yaml_documents():
  scalars = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(), TEXT)
  values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
  )
  model_keys = st.sampled_from(["type", "class_type", "module_path", "hidden_neurons"])
  sections = st.fixed_dictionaries({}, optional={
    "model": st.dictionaries(model_keys, values),
    "train": st.dictionaries(st.sampled_from(["epochs", "extend", "train_feeder", "bogus"]), values),
    "runtime": st.dictionaries(st.sampled_from(["xla", "seed"]), values),
  })  # fmt: skip
  as_text = sections.map(lambda d: yaml.safe_dump(d, sort_keys=False))
  return st.one_of(
    as_text, st.text(max_size=80), st.sampled_from([f"model:\n  type: {p}\n" for p in PAYLOADS])
  )


@HYPOTHESIS
@given(document=_yaml_documents())
def test_yaml_variants_give_a_config_or_a_user_error(document, tmp_path):
  path = tmp_path / "variant.yaml"
  path.write_text(document)
  try:
    config = yaml_variants.load_yaml_variant(str(path))
  except UserError as error:
    assert str(error).strip()
    return
  assert config.is_locked


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_extended_files_never_run(tmp_path, payload):
  (tmp_path / "base.yaml").write_text(f"model:\n  hidden_neurons: {payload}\n")
  (tmp_path / "variant.yaml").write_text("extend:\n  - base.yaml\nmodel:\n  type: toy:DebugToyModel\n")
  try:
    yaml_variants.load_yaml_variant(str(tmp_path / "variant.yaml"))
  except UserError:
    pass

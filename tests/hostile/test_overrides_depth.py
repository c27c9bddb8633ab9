"""Deeply nested override values: one line, no RecursionError, through both CLIs.

A 60,000-deep list given to `-p` or `--config.` used to end in a
RecursionError from the YAML parser.
"""

import pytest

from deephub.config import overrides
from deephub.errors import UserError
from tests.cli_run import run_deep
from tests.conftest import run_cli

DEEP_VALUES = {
  # Each argument stays below Linux's 128 KiB limit for one argv string.
  "brackets": "[" * 60_000 + "]" * 60_000,
  "yaml_block": "- " * 60_000 + "x",
  "dicts": '{"a": ' * 15_000 + "1" + "}" * 15_000,
}


@pytest.mark.parametrize("form", DEEP_VALUES)
@pytest.mark.parametrize("key", ["train.train_feeder.file_patterns", "train.train_feeder.features_map"])
def test_p_refuses_a_deep_value_in_one_line(tmp_path, form, key):
  result = run_deep(
    "trainer", "train", "toy", "-p", "model.model_dir", str(tmp_path / "m"), "-p", key, DEEP_VALUES[form],
    timeout=120,
  )  # fmt: skip
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr[-2000:]
  assert lines[0].startswith(f"deephub: error: -p {key}: the value ")
  assert f"nests deeper than {overrides.MAX_DEPTH} levels" in lines[0]
  assert len(lines[0]) < 300  # The 120 KB value is not echoed.
  assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("form", ["brackets", "yaml_block"])
def test_config_flag_refuses_a_deep_list_in_one_line(tmp_path, form):
  result = run_cli(
    "--variant=toy",
    f"--config.model.model_dir={tmp_path / 'm'}",
    f"--config.train.train_feeder.file_patterns={DEEP_VALUES[form]}",
    timeout=120,
  )
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
  lines = [line for line in result.stderr.splitlines() if line.startswith("deephub: error:")]
  assert len(lines) == 1, result.stderr[-2000:]
  assert f"nests deeper than {overrides.MAX_DEPTH} levels" in lines[0] and len(lines[0]) < 300
  assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
  "text",
  ["[" * 64 + "]" * 64, "- " * 64 + "x", '{"a": ' * 63 + "[1]" + "}" * 63],
  ids=["list", "block", "dict"],
)
def test_the_depth_limit_is_exact(text):
  value = overrides.parse_value(text)
  assert isinstance(value, (list, dict))
  deeper = "[" + text + "]" if text[0] in "[{" else "- " + text
  with pytest.raises(UserError, match="nests deeper than 64 levels"):
    overrides.parse_value(deeper)


def test_yaml_aliases_of_lists_are_refused():
  # 40 levels of doubling would be 2**40 items once the config is written out.
  bomb = "{l0: &l0 [x, x], " + ", ".join(f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 40)) + "}"
  with pytest.raises(UserError, match="repeats a list or dict through a YAML alias"):
    overrides.parse_value(bomb)
  assert overrides.parse_value("{a: &x 1, b: *x}") == {"a": 1, "b": 1}  # A scalar alias is a copy.

"""`-p` as the old framework read it, through the real CLIs: arithmetic, new model keys, `-P`, the banner.

`python -m deephub` is `deep`; `python -m deephub.train`'s `--config.KEY=VALUE`
goes through the same parser.
"""

import json

import pytest

from tests.cli_run import run_deep
from tests.conftest import run_cli

TOY = "deephub/resources/blobs/data/toy"


def one_line_error(result) -> str:
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("deephub: error: "), result.stderr[-3000:]
  return lines[0]


def test_p_computes_adds_model_keys_and_P_keeps_text(tmp_path):
  model_dir = tmp_path / "model"
  result = run_deep(
    "--banner", "trainer", "train", "toy",
    "-p", "model.model_dir", str(model_dir),
    "-p", "train.epochs", "4/2",  # 2.0 from `/`, a whole number: the int field takes 2.
    "-p", "model.learning_rate", "1e-3*4",
    "-p", "model.num_steps_per_decay", "2**2",  # Not in toy's variant; DebugToyModel takes it.
    "-p", "model.learning_rate_decay_factor", "-(-1/2)",  # Starts with '-', yet a value, not an option.
    "-p", "runtime.xla", "False",
    "-p", "train.train_feeder.max_examples", "-(3-2)",  # -1: all examples.
    "-P", "train.train_feeder.file_patterns", f"{TOY}/train-*",
    module="deephub",
  )  # fmt: skip
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stderr.splitlines()[0].startswith("deephub 0.1.0: Estimator-era Deephub")
  config = json.loads((model_dir / "config.json").read_text())
  assert config["train"]["epochs"] == 2
  assert config["model"]["learning_rate"] == 0.004
  assert config["model"]["num_steps_per_decay"] == 4
  assert (
    config["model"]["learning_rate_decay_factor"] == 0.5
    and config["train"]["train_feeder"]["max_examples"] == -1
  )
  assert config["train"]["train_feeder"]["file_patterns"] == [f"{TOY}/train-*"]
  assert (model_dir / "model.ckpt-2.index").is_file()


@pytest.mark.parametrize(
  "params, fragments",
  [
    (["-p", "train.epochs", "9**9**9"], ["-p train.epochs: the value '9**9**9' is refused", "2**63 or more"]),
    (
      ["-p", "model.hiden_neurons", "3"],
      ["unknown config key 'model.hiden_neurons'", "'model.hidden_neurons'"],
    ),
    (["-p", "train.new_key", "1"], ["unknown config key 'train.new_key'; closest: "]),
    (["-P", "model.hidden_neurons", "5"], ["-P model.hidden_neurons '5': the field holds int"]),
  ],
)
def test_p_errors_are_one_line(tmp_path, params, fragments):
  line = one_line_error(
    run_deep(
      "trainer", "train", "toy", "-p", "model.model_dir", str(tmp_path / "m"), *params, module="deephub"
    )
  )
  for fragment in fragments:
    assert fragment in line
  assert not (tmp_path / "m").exists()


def test_banner_is_off_by_default_and_the_last_flag_wins():
  pattern = f"{TOY}/*"
  plain = run_deep("utils", "total-examples", pattern, module="deephub")
  shown = run_deep("--hide-banner", "--banner", "utils", "total-examples", pattern, module="deephub")
  hidden = run_deep("--banner", "--hide-banner", "utils", "total-examples", pattern, module="deephub")
  for result in (plain, shown, hidden):
    assert result.returncode == 0, result.stderr
  assert plain.stdout == shown.stdout == hidden.stdout and "20" in plain.stdout
  assert "deephub 0.1.0" not in plain.stderr + hidden.stderr
  assert shown.stderr.splitlines()[0].startswith("deephub 0.1.0: Estimator-era Deephub on TensorFlow 2 (")


def test_config_flags_share_the_parser(tmp_path):
  model_dir = tmp_path / "model"
  result = run_cli(
    "--variant=toy", f"--config.model.model_dir={model_dir}",
    "--config.train.epochs", "4/2",  # The space-separated form, as absl flags take it.
    "--noconfig.runtime.xla",
    "--config.model.num_steps_per_decay=2*2",
    "--config.model.learning_rate_decay_factor=0.5",
  )  # fmt: skip
  assert result.returncode == 0, result.stderr[-3000:]
  config = json.loads((model_dir / "config.json").read_text())
  assert config["train"]["epochs"] == 2 and config["runtime"]["xla"] is False
  assert config["model"]["num_steps_per_decay"] == 4
  refused = run_cli("--variant=toy", f"--config.model.model_dir={model_dir}", "--config.train.epochs=9**9**9")
  assert refused.returncode == 2
  [line] = [line for line in refused.stderr.splitlines() if line.startswith("deephub: error:")]
  assert line.startswith("deephub: error: --config.train.epochs: the value '9**9**9' is refused")

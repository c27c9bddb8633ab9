"""The real `python -m deephub.train` entry point, run as a child process."""

import json
import os

import pytest

from tests.conftest import run_cli


def assert_one_line_error(result, *fragments):
  assert result.returncode == 2, result.stderr
  assert "Traceback" not in result.stderr
  lines = [line for line in result.stderr.splitlines() if line.startswith("deephub: error:")]
  assert len(lines) == 1, result.stderr
  for fragment in fragments:
    assert fragment in lines[0]


def test_trains_toy_with_overrides_from_another_folder(tmp_path):
  result = run_cli(
    "--variant=toy", "--config.train.epochs=2", "--config.train.save_summary_steps=2",
    f"--config.model.model_dir={tmp_path / 'model'}", cwd=tmp_path,
  )  # fmt: skip
  assert result.returncode == 0, result.stderr
  assert "finished toy" in result.stderr
  model_dir = tmp_path / "model"
  assert (model_dir / "model.ckpt-2.index").is_file()
  config = json.loads((model_dir / "config.json").read_text())
  assert config["train"]["epochs"] == 2
  assert config["model"]["hidden_neurons"] == 50
  assert "epochs: 2" in (model_dir / "experiment_params.yaml").read_text()
  assert "step 2/2" in result.stderr  # Progress log line.


def test_default_model_dir_is_runs_variant_in_cwd(tmp_path):
  single_glob = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "deephub/resources/blobs/data/toy/train-*"
  )
  result = run_cli(
    "--variant", "toy", "--config.train.epochs=1",
    f"--config.train.train_feeder.file_patterns={single_glob}", cwd=tmp_path,
  )  # fmt: skip
  assert result.returncode == 0, result.stderr
  assert f"training into {tmp_path / 'runs' / 'toy'}" in result.stderr
  assert (tmp_path / "runs" / "toy" / "model.ckpt-1.index").is_file()
  config = json.loads((tmp_path / "runs" / "toy" / "config.json").read_text())
  assert config["train"]["train_feeder"]["file_patterns"] == [single_glob]


def test_variants_dir(tmp_path):
  (tmp_path / "tiny.py").write_text(
    "from deephub.config import variants\n"
    "def get_config():\n"
    "  config = variants.load_variant('toy')\n"
    "  config.model.hidden_neurons = 3\n"
    "  config.train.epochs = 1\n"
    "  return config\n"
  )
  result = run_cli(
    "--variant=tiny", f"--variants_dir={tmp_path}", f"--config.model.model_dir={tmp_path / 'm'}"
  )
  assert result.returncode == 0, result.stderr
  assert json.loads((tmp_path / "m" / "config.json").read_text())["model"]["hidden_neurons"] == 3


@pytest.mark.parametrize(
  "args, fragments",
  [
    (
      ["--variant=toy", "--config.model.hiden_neurons=5"],
      ["'model.hiden_neurons'", "'model.hidden_neurons'"],
    ),
    (["--variant=toy", "--config.train.epoch=5"], ["'train.epoch'", "'train.epochs'"]),
    (["--variant=toy", "--config.model.hidden_neurons=abc"], ["--config.model.hidden_neurons=abc", "int"]),
    (["--variant=toyy"], ["Cannot find variant with name 'toyy'", "'toy'"]),
    ([], ["pass --variant=NAME"]),
    (
      ["--variant=toy", "--config.train.save_checkpoint_secs=60"],
      ["exactly one of train.save_checkpoint_steps"],
    ),
    (["--variant=toy", "--config.model.type=toy:Nope"], ["has no Model class 'Nope'", "toy:DebugToyModel"]),
  ],
)
def test_user_errors_are_one_line(tmp_path, args, fragments):
  if args:
    args.append(f"--config.model.model_dir={tmp_path / 'm'}")
  result = run_cli(*args, cwd=tmp_path)
  assert_one_line_error(result, *fragments)
  assert not (tmp_path / "m" / "checkpoint").exists()

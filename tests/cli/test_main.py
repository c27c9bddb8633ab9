"""The `deep` command: parsing, logging, no TensorFlow where it is not needed, and real runs."""

import json
import os
import subprocess
import sys

import pytest

from deephub.cli import main as deep
from deephub.cli import trainer_commands
from deephub.errors import UserError
from tests.cli_run import run_deep, script_env
from tests.conftest import REPO, run_cli


def parse(*argv):
  return deep.build_parser().parse_args(list(argv))


def test_train_arguments():
  args = parse(
    "trainer", "train", "toy", "-d", "/v", "-p", "a.b", "1", "-p", "c", "x y", "-g", "0", "-g", "2",
    "--warm-start-checkpoint", "/ckpt", "--warm-start-vars", "toy/w.*",
  )  # fmt: skip
  assert (args.variant, args.variants_dir) == ("toy", "/v")
  assert args.param_expr == [["a.b", "1"], ["c", "x y"]]
  assert args.gpu_device_id == [0, 2]
  assert parse("trainer", "train", "toy", "-g", "-1").gpu_device_id == [-1]
  assert args.run is trainer_commands._train


def test_resolve_config_applies_p_and_warm_start_flags():
  args = parse(
    "trainer", "train", "toy", "-p", "train.epochs", "3", "-p", "model.model_dir", "/x",
    "--warm-start-checkpoint", "/ckpt/model.ckpt-5", "--warm-start-vars", "toy/w.*",
  )  # fmt: skip
  config = trainer_commands.resolve_config(args)
  assert config.train.epochs == 3 and config.model.model_dir == "/x"
  assert config.train.warm_start_check_point == "/ckpt/model.ckpt-5"
  assert config.train.warm_start_variables_regex == "toy/w.*"
  plain = trainer_commands.resolve_config(parse("trainer", "train", "toy"))
  assert (plain.train.warm_start_check_point, plain.train.warm_start_variables_regex) == ("", ".*")


@pytest.mark.parametrize(
  "argv, message",
  [
    (["trainer", "train", "nope"], r"Cannot find variant with name 'nope'"),
    (
      ["trainer", "train", "toy", "-p", "train.epoch", "3"],
      r"unknown config key 'train.epoch'; closest: 'train.epochs'",
    ),
    (["trainer", "train", "toy", "-g", "0", "-g", "-1"], r"-g -1 picks idle GPUs by itself"),
  ],
)
def test_user_errors_are_one_line_exit_2(capsys, argv, message):
  assert deep.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("deephub: error: ") and err.count("\n") == 1
  assert __import__("re").search(message, err)


@pytest.mark.parametrize(
  "argv", [["--help"], ["trainer", "--help"], ["utils", "total-examples", "--help"], ["bogus"]]
)
def test_argparse_exits(argv):
  with pytest.raises(SystemExit) as exit_info:
    deep.main(argv)
  assert exit_info.value.code == (2 if argv == ["bogus"] else 0)


@pytest.mark.parametrize(
  "level, tf_level, absl_level",
  [("DEBUG", "0", "debug"), ("INFO", "0", "info"), ("ERROR", "2", "error"), ("CRITICAL", "3", "fatal")],
)
def test_logging_level_sets_python_absl_and_tensorflow(monkeypatch, level, tf_level, absl_level):
  import logging

  from absl import logging as absl_logging

  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "9")
  deep.configure_logging(level, "stdout")
  assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == tf_level
  assert logging.getLogger().level == getattr(logging, level)
  assert logging.getLogger().handlers[0].stream is sys.stdout
  assert absl_logging.get_verbosity() == absl_logging.converter.ABSL_NAMES[absl_level.upper()]
  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
  deep.configure_logging(None, "stderr")  # Without -l a user's setting stays.
  assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
  assert logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize(
  "argv",
  [
    ["--help"],
    ["trainer", "train", "--help"],
    ["utils", "total-examples", "deephub/resources/blobs/data/toy/*"],
    ["utils", "validate", "deephub/resources/blobs/data/*/*"],
  ],
)
def test_help_and_utils_do_not_import_tensorflow(argv):
  code = (
    "import sys\nfrom deephub.cli.main import main\n"
    f"try:\n  code = main({argv!r})\nexcept SystemExit as e:\n  code = e.code\n"
    "print('TF', 'tensorflow' in sys.modules, 'keras' in sys.modules, code)"
  )
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
  assert result.stdout.strip().splitlines()[-1] == "TF False False 0"


def test_documented_commands_verbatim_and_parity_with_deephub_train(tmp_path):
  """The old docs' command through the installed `deep` script, and the same run through deephub.train."""
  deep_dir, train_dir = tmp_path / "deep", tmp_path / "train"
  command = (
    f"deep -l DEBUG trainer train toy -p model.model_dir {deep_dir} "
    "-p train.train_feeder.file_patterns deephub/resources/blobs/data/toy/train-* "
    "-p train.eval_feeder.file_patterns deephub/resources/blobs/data/toy/validation-*"
  )
  result = subprocess.run(
    ["bash", "-c", command], cwd=REPO, env=script_env(), capture_output=True, text=True, timeout=300
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"deephub: training toy into {deep_dir}" in result.stderr
  assert f"deephub: finished toy in {deep_dir}" in result.stderr
  assert "DEBUG" in result.stderr  # -l DEBUG reached the logs.
  assert os.path.isfile(deep_dir / "model.ckpt-10.index")

  # bash expanded the unquoted globs for deep (one file each); pass deephub.train the same values.
  result = run_cli(
    "--variant=toy",
    f"--config.model.model_dir={train_dir}",
    "--config.train.train_feeder.file_patterns=deephub/resources/blobs/data/toy/train-00000-of-00001",
    "--config.train.eval_feeder.file_patterns=deephub/resources/blobs/data/toy/validation-00000-of-00001",
  )
  assert result.returncode == 0, result.stderr[-3000:]
  from_deep = json.loads((deep_dir / "config.json").read_text())
  from_train = json.loads((train_dir / "config.json").read_text())
  assert from_deep["model"].pop("model_dir") == str(deep_dir)
  assert from_train["model"].pop("model_dir") == str(train_dir)
  assert from_deep == from_train
  assert from_deep["train"]["train_feeder"]["file_patterns"] == [
    "deephub/resources/blobs/data/toy/train-00000-of-00001"
  ]


def test_deephub_train_loads_yaml_variants():
  # train.epochs = 0 stops in the engine's first check, after the YAML
  # variant was loaded through ml_collections and the override applied.
  result = run_cli("--variant=toy.yaml", "--config.train.epochs=0")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == "deephub: error: train.epochs is 0; set it to 1 or more"


def test_unknown_variant_exits_2():
  result = run_deep("trainer", "train", "x")
  assert result.returncode == 2
  assert "deephub: error: Cannot find variant with name 'x'" in result.stderr


def test_resolve_config_raises_user_error_for_yaml_problems(tmp_path):
  (tmp_path / "bad.yaml").write_text("model: !!python/object/apply:os.getcwd []\n")
  with pytest.raises(UserError, match=r"bad.yaml is refused"):
    trainer_commands.resolve_config(parse("trainer", "train", "bad", "-d", str(tmp_path)))


def test_trainer_evaluate_export_predict_on_a_trained_model_dir(tmp_path):
  model_dir = str(tmp_path / "model")
  trained = run_deep("trainer", "train", "toy", "-p", "model.model_dir", model_dir, "-p", "train.epochs", "2")
  assert trained.returncode == 0, trained.stderr
  evaluated = run_deep("trainer", "evaluate", "toy", "-p", "model.model_dir", model_dir)
  assert evaluated.returncode == 0, evaluated.stderr
  assert "deephub: evaluated toy: loss = " in evaluated.stderr and "global_step = 2" in evaluated.stderr
  exported = run_deep("trainer", "export", "toy", "-p", "model.model_dir", model_dir)
  assert exported.returncode == 0, exported.stderr
  export_dir = exported.stderr.split("deephub: exported toy to ")[1].split()[0]
  assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))
  output = str(tmp_path / "predictions.jsonl")
  predicted = run_deep("trainer", "predict", "toy", "-p", "model.model_dir", model_dir, "-o", output)
  assert predicted.returncode == 0, predicted.stderr
  rows = [json.loads(line) for line in open(output)]
  assert len(rows) == 10 and set(rows[0]) == {"classes", "probabilities"}
  missing = run_deep("trainer", "evaluate", "toy", "-p", "model.model_dir", str(tmp_path / "empty"))
  assert missing.returncode == 2 and "Traceback" not in missing.stderr

"""Entry point: `python -m deephub.train --variant=toy [--mode=MODE] [--config.KEY=VALUE ...]`.

Only flags live here; each mode is one call: `train_and_evaluate(config)`,
`evaluate(config)`, `export(config)` or `predict(config, path)` from
`deephub.engine`.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) hides our
# log lines; users can still set the variable themselves.
_TF_CPP_LEVEL_FROM_USER = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from deephub import clean_exit, launch  # noqa: E402
from deephub.cli import flags as cli_flags  # noqa: E402
from deephub.config import variants  # noqa: E402
from deephub.errors import UserError  # noqa: E402


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines this entry point's flags on `flag_values` (tests use a fresh one)."""
  flags.DEFINE_string(
    "variant", None, "Variant name: configs/variants/<variant>.py or <variant>.yaml.", flag_values=flag_values
  )
  flags.DEFINE_string(
    "variants_dir",
    None,
    "Folder to look for the variant in instead of configs/variants.",
    flag_values=flag_values,
  )
  flags.DEFINE_enum("mode", "train", launch.MODES, "What to do with the variant.", flag_values=flag_values)
  flags.DEFINE_string(
    "predictions_path", None, "--mode=predict: JSON-lines output file; default model_dir/predictions.jsonl.",
    flag_values=flag_values,
  )  # fmt: skip
  config_flags.DEFINE_config_file(
    "config", None, "Variant file; set from --variant.", flag_values=flag_values, lock_config=True
  )


FLAGS = flags.FLAGS
define_flags(FLAGS)


def parse_flags(argv: list[str], flag_values: flags.FlagValues = FLAGS) -> list[str]:
  """Resolves --variant to the config file, checks overrides, then parses all flags.

  User errors print one line and exit 2; absl would print a traceback for an
  unknown config key.
  """
  try:
    variant = cli_flags.flag_value(argv, "variant")
    if variant is None and cli_flags.flag_value(argv, "config") is None:
      raise UserError("pass --variant=NAME (a file in configs/variants) or --config=PATH")
    if variant is not None:
      path = variants.find_variant(variant, cli_flags.flag_value(argv, "variants_dir"))
      config = variants.load_variant_file(path)  # Loaded once: the flag below reuses it.
      cli_flags.check_overrides(argv, config)
      argv = [argv[0], f"--config={variants.config_file_flag(path, config)}", *argv[1:]]
    return flag_values(argv)
  except UserError as error:
    cli_flags.exit_with(error)
  except flags.Error as error:
    cli_flags.exit_with(error)


def main(argv: list[str]) -> int:
  """Runs the mode; returns its exit code (a stop signal's, see `launch.run_mode`)."""
  if len(argv) > 1:
    cli_flags.exit_with(UserError(f"unexpected arguments {argv[1:]}; pass settings as --config.KEY=VALUE"))
  if FLAGS.verbosity >= 1 and not _TF_CPP_LEVEL_FROM_USER:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # `-v 1` shows TensorFlow's native lines too (see console).
  name = FLAGS.variant or os.path.splitext(os.path.basename(FLAGS["config"].config_filename))[0]
  try:
    return launch.run_mode(FLAGS.config, name, FLAGS.mode, predictions_path=FLAGS.predictions_path)
  except UserError as error:  # Also NonFiniteLossError and a full or read-only model_dir.
    cli_flags.exit_with(error)


def run() -> None:
  cli_flags.register_config_parsers()
  # Keeps the real exit code after S3 use (see clean_exit).
  clean_exit.run_and_exit(lambda: app.run(main, flags_parser=parse_flags))


if __name__ == "__main__":
  run()

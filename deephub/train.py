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

import dataclasses  # noqa: E402

import ml_collections  # noqa: E402
from absl import app, flags  # noqa: E402

from deephub import clean_exit, launch  # noqa: E402
from deephub.cli import flags as cli_flags  # noqa: E402
from deephub.config import overrides, variants  # noqa: E402
from deephub.errors import UserError  # noqa: E402


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines this entry point's flags on `flag_values` (tests use a fresh one).

  `--config.KEY=VALUE` is no absl flag: `parse_flags` takes those out first
  and applies them with `deephub.config.overrides`, the parser of `deep -p`.
  """
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
  flags.DEFINE_string(
    "config", None, "Path of a variant file (.py or .yaml), instead of --variant.", flag_values=flag_values
  )


FLAGS = flags.FLAGS
define_flags(FLAGS)


@dataclasses.dataclass(frozen=True)
class Parsed:
  """What `parse_flags` hands to `main` (absl passes it through untouched)."""

  # The loaded variant with the --config. overrides applied.
  config: ml_collections.ConfigDict
  # Its name, for the default model_dir and the messages.
  name: str
  # argv left after absl parsed its flags (the program name first).
  argv: list[str]


def parse_flags(argv: list[str], flag_values: flags.FlagValues = FLAGS) -> Parsed:
  """Loads the variant once, applies the `--config.KEY=VALUE` overrides, then parses the other flags.

  User errors print one line and exit 2.
  """
  try:
    pairs, argv = cli_flags.split_config_overrides(argv)
    variant = cli_flags.flag_value(argv, "variant")
    path = cli_flags.flag_value(argv, "config")
    if variant is not None:
      path = variants.find_variant(variant, cli_flags.flag_value(argv, "variants_dir"))
    elif path is None:
      raise UserError("pass --variant=NAME (a file in configs/variants) or --config=PATH")
    elif not os.path.isfile(path):
      raise UserError(f"--config={path} is not a file; pass a variant file (.py or .yaml) or --variant=NAME")
    config = variants.load_variant_file(path)  # Loaded once, here.
    overrides.apply_overrides(config, pairs)
    rest = flag_values(argv)
    return Parsed(config, variant or os.path.splitext(os.path.basename(path))[0], rest)
  except UserError as error:
    cli_flags.exit_with(error)
  except flags.Error as error:
    cli_flags.exit_with(error)


def main(parsed: Parsed) -> int:
  """Runs the mode; returns its exit code (a stop signal's, see `launch.run_mode`)."""
  if len(parsed.argv) > 1:
    cli_flags.exit_with(
      UserError(f"unexpected arguments {parsed.argv[1:]}; pass settings as --config.KEY=VALUE")
    )
  if FLAGS.verbosity >= 1 and not _TF_CPP_LEVEL_FROM_USER:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # `-v 1` shows TensorFlow's native lines too (see console).
  try:
    return launch.run_mode(parsed.config, parsed.name, FLAGS.mode, predictions_path=FLAGS.predictions_path)
  except UserError as error:  # Also NonFiniteLossError and a full or read-only model_dir.
    cli_flags.exit_with(error)


def run() -> None:
  # Keeps the real exit code after S3 use (see clean_exit).
  clean_exit.run_and_exit(lambda: app.run(main, flags_parser=parse_flags))


if __name__ == "__main__":
  run()

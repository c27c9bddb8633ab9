"""`deep`: the Estimator-era Deephub command line on the new engine.

  deep [-l LEVEL] [--logging-stream stdout|stderr] [--banner] trainer train VARIANT [-p KEY VALUE ...]
  deep utils generate-metadata|total-examples|validate PATTERN
  deep hpt run|status TUNE.yaml
  deep preprocessor image|text ...
  deep doctor
  deep --version   (also says whether deephub's native ops load, and from where)
  python -m deephub ...   (the same as deep ...)

argparse, not absl flags: absl has no subcommands. Only `trainer` commands
import TensorFlow, and only once they run, so `deep --help` and `deep utils`
start fast.
"""

import argparse
import logging
import os
import sys

import deephub
from deephub.cli import (
  doctor,
  flags,
  hpt_commands,
  metadata_commands,
  preprocessor_commands,
  trainer_commands,
)
from deephub.cli.commands import add_group
from deephub.errors import UserError, print_user_error

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# TF_CPP_MIN_LOG_LEVEL hides C++ messages below: 0 none, 1 INFO, 2 WARNING, 3 ERROR.
_TF_CPP_LEVELS = {"DEBUG": "0", "INFO": "0", "WARNING": "1", "ERROR": "2", "CRITICAL": "3"}


class _VersionAction(argparse.Action):
  """`deep --version`: versions, and whether the native ops load (imports TensorFlow, only then)."""

  def __init__(self, option_strings, dest, **kwargs):
    del kwargs
    super().__init__(option_strings, dest, nargs=0, help="print versions and the native ops' status")

  def __call__(self, parser, namespace, values, option_string=None):
    print("\n".join(version_lines()))
    parser.exit()


def version_lines() -> list[str]:
  """deephub's and TensorFlow's versions, and where the native ops load from (or why not)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  from deephub import console

  console.load_tensorflow()  # Hides TensorFlow's no-GPU start-up lines, as training does.
  import tensorflow as tf

  from deephub.ops import loader

  return [
    f"deephub {deephub.__version__} ({os.path.dirname(os.path.abspath(deephub.__file__))})",
    f"tensorflow {tf.__version__}",
    loader.status().describe(),
  ]


def banner() -> str:
  """The `--banner` line: what is running, and from where (no TensorFlow import)."""
  where = os.path.dirname(os.path.abspath(deephub.__file__))
  return f"deephub {deephub.__version__}: Estimator-era Deephub on TensorFlow 2 ({where})"


def build_parser() -> argparse.ArgumentParser:
  """The whole `deep` command tree."""
  parser = argparse.ArgumentParser(prog="deep", description="Train Deephub variants and manage their data.")
  parser.add_argument("--version", action=_VersionAction)
  # The old `deep` took these (click's --banner/--hide-banner); the last one given wins.
  parser.add_argument(
    "--banner",
    dest="banner",
    action="store_true",
    default=False,
    help="print a one-line banner (name, version) on stderr first",
  )
  parser.add_argument("--hide-banner", dest="banner", action="store_false", help="no banner (the default)")
  parser.add_argument("-l", "--logging-level", choices=LEVELS, help="log level (default WARNING)")
  parser.add_argument(
    "--logging-stream", choices=("stdout", "stderr"), default="stderr", help="where logs go"
  )
  groups = parser.add_subparsers(
    dest="group", required=True, metavar="{trainer,utils,preprocessor,hpt,doctor}"
  )
  add_group(groups, "trainer", "train variants", trainer_commands.COMMANDS)
  add_group(groups, "utils", "TFRecord metadata tools", metadata_commands.COMMANDS)
  add_group(groups, "hpt", "hyperparameter search (Optuna; the hpt extra)", hpt_commands.COMMANDS)
  add_group(groups, "preprocessor", "raw images or CSV text to TFRecords", preprocessor_commands.COMMANDS)
  checkup = "check the installation: versions, devices, optional parts, this folder's variants"
  groups.add_parser("doctor", help=checkup, description=checkup).set_defaults(run=doctor.run)
  return parser


def configure_logging(level: str | None, stream: str) -> None:
  """Python, absl and TensorFlow C++ logging at `level` (WARNING when None) on `stream`."""
  if level is None:
    # TensorFlow's start-up chatter (CUDA probing) stays hidden unless asked for.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    level = "WARNING"
  else:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = _TF_CPP_LEVELS[level]
  logging.basicConfig(
    stream=sys.stdout if stream == "stdout" else sys.stderr,
    level=level,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
  )
  from absl import logging as absl_logging  # Deferred: 0.1 s that `deep --help` does not need.

  absl_logging.set_verbosity(level.lower() if level != "CRITICAL" else "fatal")


def main(argv: list[str] | None = None) -> int:
  """Runs `deep ARGV`; returns the exit code (2 for user errors, as argparse does)."""
  args = build_parser().parse_args(flags.protect_override_values(sys.argv[1:] if argv is None else argv))
  if args.banner:
    print(banner(), file=sys.stderr, flush=True)
  configure_logging(args.logging_level, args.logging_stream)
  try:
    return args.run(args) or 0
  except UserError as error:
    return print_user_error(error)


def run() -> None:
  """Console-script entry point; keeps the real exit code after S3 use (see clean_exit)."""
  from deephub import clean_exit

  clean_exit.run_and_exit(main)


if __name__ == "__main__":
  run()

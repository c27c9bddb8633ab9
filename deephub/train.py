"""Entry point: `python -m deephub.train --variant=toy [--config.KEY=VALUE ...]`.

Only flags live here; everything they do is `train_and_evaluate(config)`.
"""

import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) hides our
# log lines; users can still set the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from deephub import clean_exit, cli_support, variants  # noqa: E402
from deephub.errors import UserError  # noqa: E402

flags.DEFINE_string("variant", None, "Variant name: configs/variants/<variant>.py.")
flags.DEFINE_string("variants_dir", None, "Folder to look for the variant in instead of configs/variants.")
config_flags.DEFINE_config_file("config", None, "Variant file; set from --variant.", lock_config=True)
FLAGS = flags.FLAGS


def parse_flags(argv: list[str]) -> list[str]:
  """Resolves --variant to the config file, checks overrides, then parses all flags.

  User errors print one line and exit 2; absl would print a traceback for an
  unknown config key.
  """
  try:
    variant = cli_support.flag_value(argv, "variant")
    if variant is None and cli_support.flag_value(argv, "config") is None:
      raise UserError("pass --variant=NAME (a file in configs/variants) or --config=PATH")
    if variant is not None:
      path = variants.find_variant(variant, cli_support.flag_value(argv, "variants_dir"))
      argv = [argv[0], f"--config={path}", *argv[1:]]
      cli_support.check_overrides(argv, variants.load_variant(variant, os.path.dirname(path)))
    return FLAGS(argv)
  except UserError as error:
    cli_support.exit_with(error)
  except flags.Error as error:
    cli_support.exit_with(error)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    cli_support.exit_with(UserError(f"unexpected arguments {argv[1:]}; pass settings as --config.KEY=VALUE"))
  config = FLAGS.config
  name = FLAGS.variant or os.path.splitext(os.path.basename(FLAGS["config"].config_filename))[0]
  if not config.model.model_dir:
    config.model.model_dir = os.path.abspath(os.path.join("runs", name))
    logging.info("model.model_dir is not set; training into %s", config.model.model_dir)
    print(f"deephub: training into {config.model.model_dir}", file=sys.stderr)
  from deephub.engine import train_and_evaluate  # Deferred: loads TensorFlow.

  try:
    results = train_and_evaluate(config)
  except UserError as error:
    cli_support.exit_with(error)
  print(
    f"deephub: finished {name} in {config.model.model_dir}: "
    + ", ".join(f"{k} = {v:.5g}" for k, v in results.items()),
    file=sys.stderr,
  )


def run() -> None:
  cli_support.register_config_parsers()
  # Keeps the real exit code after S3 use (see clean_exit).
  clean_exit.run_and_exit(lambda: app.run(main, flags_parser=parse_flags))


if __name__ == "__main__":
  run()

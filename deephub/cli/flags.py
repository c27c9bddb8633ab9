"""Flag helpers shared by the entry points: override checks, parsers, one-line errors."""

import sys

import ml_collections
from absl import flags
from ml_collections import config_flags

from deephub.config import overrides, variants
from deephub.errors import print_user_error

_CONFIG_PREFIX = "--config."


def flag_value(argv: list[str], name: str) -> str | None:
  """Returns the value of `--name=V` or `--name V` in argv, before absl parses it."""
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
    if arg == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def check_overrides(argv: list[str], config: ml_collections.ConfigDict) -> None:
  """Raises a UserError naming the closest keys for any unknown `--config.KEY`."""
  for arg in argv:
    if arg.startswith(_CONFIG_PREFIX):
      key = arg[len(_CONFIG_PREFIX) :].split("=", 1)[0]
      variants.check_key(config, key)


def exit_with(error: Exception) -> None:
  """Prints a user error as one line (`errors.print_user_error`) and exits 2, no traceback."""
  sys.exit(print_user_error(error))


class _ListParser(flags.ArgumentParser):
  """Parses a list override: a Python literal list, else one string item.

  `--config.train.train_feeder.file_patterns=/data/train-*` gives a list of
  one glob; `="['a-*', 'b-*']"` gives two. Nothing is evaluated as code.
  """

  def parse(self, argument):
    if isinstance(argument, list):
      return argument
    value = overrides.parse_value(argument)  # The same literal rules as `deep -p`.
    return list(value) if isinstance(value, (list, tuple)) else [value]

  def flag_type(self):
    return "list"


def register_config_parsers() -> None:
  """Lets `--config.` override list fields (ml-collections knows only scalars and tuples)."""
  config_flags.register_flag_parser_for_type(list, _ListParser())

"""Flags the entry points share: `deep`'s `-p`/`-P`, `python -m deephub.train`'s `--config.KEY=VALUE`.

Both spellings become `deephub.config.overrides.Override`s and go through
the one parser, `overrides.apply_overrides`: the same value rules, the same
key checks, the same one-line errors. The config package is imported only
when an override is read, so `deep --help` stays fast.
"""

import argparse
import re
import sys
from typing import TYPE_CHECKING

from deephub.errors import print_user_error

if TYPE_CHECKING:
  from deephub.config.overrides import Override

# `--config.KEY=VALUE`, `--config.KEY VALUE`, `--config.KEY` / `--noconfig.KEY` (a bool, as absl reads them).
_CONFIG_FLAG = re.compile(r"^--?(no)?config\.([^=]+)(=(.*))?$", re.DOTALL)


def flag_value(argv: list[str], name: str) -> str | None:
  """Returns the value of `--name=V` or `--name V` in argv, before absl parses it."""
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
    if arg == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def split_config_overrides(argv: list[str]) -> tuple[list["Override"], list[str]]:
  """Takes the `--config.KEY=VALUE` overrides out of argv, in order.

  `--config.KEY VALUE` takes the next argument (`-1` too), unless it is a
  `--` flag: then `--config.KEY` alone sets True; `--noconfig.KEY` sets
  False, as absl reads boolean flags.

  Returns:
    The overrides, and argv without them (for absl).
  """
  from deephub.config.overrides import Override

  found, rest, i = [], [], 0
  while i < len(argv):
    match = _CONFIG_FLAG.match(argv[i]) if i > 0 else None
    if match is None:
      rest.append(argv[i])
      i += 1
      continue
    negated, key, has_value, value = match.groups()
    if negated:
      value = "False"
    elif has_value is None:
      if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
        value = argv[i + 1]
        i += 1
      else:
        value = "True"
    found.append(Override(key, value, flag="--config."))
    i += 1
  return found, rest


def exit_with(error: Exception) -> None:
  """Prints a user error as one line (`errors.print_user_error`) and exits 2, no traceback."""
  sys.exit(print_user_error(error))


_OVERRIDE_FLAGS = ("-p", "--param-expr", "-P", "--param-str")
# Put before a VALUE that starts with '-' so that argparse reads it as a value:
# argparse takes `-(3+4)` or `-1e-3` for an option. No argv string holds NUL.
_MARK = "\0"


def protect_override_values(argv: list[str]) -> list[str]:
  """Marks each `-p/-P KEY VALUE` whose VALUE starts with '-', so argparse reads it as a value.

  `-p train.lr -1e-3` and `-p runtime.seed -(3+4)` then parse; the option
  actions take the mark off again.
  """
  argv = list(argv)
  i = 0
  while i < len(argv) and argv[i] != "--":
    if argv[i] in _OVERRIDE_FLAGS and i + 2 < len(argv):
      if argv[i + 2].startswith("-"):
        argv[i + 2] = _MARK + argv[i + 2]
      i += 3
    else:
      i += 1
  return argv


def _unmarked(text: str) -> str:
  return text[len(_MARK) :] if text.startswith(_MARK) else text


class _ParamExpr(argparse.Action):
  """`-p KEY VALUE`: appends `[KEY, VALUE]` (as argparse's append would)."""

  def __call__(self, parser, namespace, values, option_string=None):
    key, text = values
    items = list(getattr(namespace, self.dest) or [])  # A copy: the default list is the parser's.
    items.append([key, _unmarked(text)])
    setattr(namespace, self.dest, items)


class _PlainString(argparse.Action):
  """`-P KEY VALUE`: appends an Override whose text is taken as it is, beside the `-p` pairs."""

  def __call__(self, parser, namespace, values, option_string=None):
    from deephub.config.overrides import Override

    key, text = values
    items = list(getattr(namespace, self.dest) or [])
    items.append(Override(key, _unmarked(text), plain=True, flag="-P"))
    setattr(namespace, self.dest, items)


def add_override_arguments(parser: argparse.ArgumentParser, purpose: str) -> None:
  """Adds `-p/--param-expr KEY VALUE` and `-P/--param-str KEY VALUE` (both repeatable, applied in order).

  Both append to `args.param_expr`: `-p` as `[KEY, VALUE]`, `-P` as an
  `Override(plain=True)`; `overrides.apply_overrides` takes both.

  Args:
    parser: the command's parser.
    purpose: how the command uses them, starting the help text ("override a
      config value").
  """
  parser.add_argument(
    "-p",
    "--param-expr",
    nargs=2,
    action=_ParamExpr,
    default=[],
    metavar=("KEY", "VALUE"),
    help=f"{purpose} by dotted key, e.g. -p train.epochs 3 (repeatable); VALUE is a Python/YAML "
    "literal or arithmetic over literals (100/5, 2**10), else a string; a new model.KEY is added "
    "when the model takes it",
  )
  parser.add_argument(
    "-P",
    "--param-str",
    nargs=2,
    action=_PlainString,
    dest="param_expr",
    metavar=("KEY", "VALUE"),
    help="as -p, but VALUE is always the plain string (repeatable)",
  )

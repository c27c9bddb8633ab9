"""How `deep` command groups declare their subcommands: one `Command` each.

Adding a subcommand is a `Command(...)` in its group's list: a name, a help
line, a function adding its arguments and the function that runs it.
"""

import argparse
import dataclasses
from collections.abc import Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Command:
  """One `deep GROUP NAME` subcommand."""

  name: str
  help: str
  add_arguments: Callable[[argparse.ArgumentParser], None]
  # Returns the process exit code (None means 0).
  run: Callable[[argparse.Namespace], int | None]


def add_group(
  groups: argparse._SubParsersAction, name: str, help_text: str, commands: Sequence[Command]
) -> argparse.ArgumentParser:
  """Adds `deep NAME` with one subparser per command; each sets `args.run`."""
  group = groups.add_parser(name, help=help_text, description=help_text)
  subcommands = group.add_subparsers(
    dest="command", required=True, metavar="{" + ",".join(c.name for c in commands) + "}"
  )
  for command in commands:
    parser = subcommands.add_parser(command.name, help=command.help, description=command.help)
    command.add_arguments(parser)
    parser.set_defaults(run=command.run)
  return group

"""`deep utils ...`: TFRecord metadata (generate, count, validate) without TensorFlow."""

import argparse
import os
import sys
import time

from deephub.cli.commands import Command
from deephub.cli.file_progress import file_progress
from deephub.errors import UserError
from deephub.io import metadata, tfrecord_format
from deephub.ops import direct


def _matching_files(pattern: str) -> list[str]:
  # These commands scan local files without importing TensorFlow (seconds saved).
  direct.enable()
  files = metadata.list_data_files(pattern)
  if not files:
    raise UserError(f"pattern {pattern!r} matches no file; quote it so the shell does not expand it")
  return files


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("pattern", metavar="PATTERN", help="glob of TFRecord files, quoted: '/data/train-*'")
  parser.add_argument(
    "--compression_type",
    "--compression-type",
    default="",
    choices=tfrecord_format.COMPRESSIONS,
    help=" or ".join(repr(name) for name in tfrecord_format.COMPRESSIONS),
  )
  parser.add_argument("--force", action="store_true", help="rescan files that already have an entry")


def _generate(args: argparse.Namespace) -> int:
  files = _matching_files(args.pattern)
  print(f"Found {len(files)} files matching {args.pattern}")
  start = time.monotonic()
  with file_progress(files) as on_file:
    report = metadata.generate(files, compression=args.compression_type, force=args.force, on_file=on_file)
  secs = max(time.monotonic() - start, 1e-9)
  megabytes = report.scanned_bytes / 1e6
  print(
    f"Scanned {len(report.scanned)} files ({megabytes:.1f} MB, {megabytes / secs:.1f} MB/s), "
    f"kept {len(report.kept)} up-to-date entries, skipped {len(report.unreadable)} unreadable"
  )
  # Skipping unreadable files is the documented behaviour, not a failure.
  return 0


def _pattern_argument(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("pattern", metavar="PATTERN", help="glob of TFRecord files, quoted")


# Skipped files named one per line before the rest are only counted.
_SKIPPED_SHOWN = 10


def _total_examples(args: argparse.Namespace) -> None:
  files = _matching_files(args.pattern)
  # As the old command did: counts come from the metadata only, and a file
  # without an up-to-date entry is skipped with a warning (no data is read).
  problems = metadata.check_files(files)
  skipped = {path for path, _ in problems}
  listed = [path for path in files if path not in skipped]
  total = sum(metadata.record_counts(listed)) if listed else 0
  for path, problem in problems[:_SKIPPED_SHOWN]:
    print(f"warning: skipping {path}: {problem}", file=sys.stderr)
  if problems:
    more = f" ({len(problems) - _SKIPPED_SHOWN} more not shown)" if len(problems) > _SKIPPED_SHOWN else ""
    print(
      f"warning: skipped {len(problems)} of {len(files)} files without up-to-date metadata{more}; "
      f"run {metadata.fix_command(os.path.dirname(problems[0][0]))} to count them",
      file=sys.stderr,
    )
  # The exact line the old command printed: scripts parse it.
  print(f"Total number of examples: {total}")


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
  _pattern_argument(parser)
  depth = parser.add_mutually_exclusive_group()
  depth.add_argument(
    "--shallow-check", dest="deep", action="store_false", help="compare file sizes only (default)"
  )
  depth.add_argument("--deep-check", dest="deep", action="store_true", help="compare sizes and md5 sums")
  parser.set_defaults(deep=False)


def _validate(args: argparse.Namespace) -> int:
  direct.enable()
  files = metadata.list_data_files(args.pattern)
  missing = metadata.missing_files(args.pattern, files)
  for path, listed_in in missing:
    print(f"{path}: missing, but listed in {listed_in}")
  if not files:
    if missing:
      print(f"{len(missing)} files listed in the metadata are missing", file=sys.stderr)
      return 1
    _matching_files(args.pattern)  # Raises the no-match error.
  if args.deep:  # Reads every byte: worth a progress bar.
    with file_progress(files) as on_file:
      problems = metadata.check_files(files, deep=True, on_file=on_file)
  else:
    problems = metadata.check_files(files, deep=False)
  for path, problem in problems:
    print(f"{path}: {problem}")
  if problems or missing:
    summary = f"{len(problems)} of {len(files)} files do not match their metadata"
    if missing:
      summary += (
        f"; {len(missing)} files listed in it are missing (lost data: restore them, or delete "
        "their entries if they were removed on purpose)"
      )
    print(summary, file=sys.stderr)
    return 1
  print(f"{len(files)} files match their metadata ({'md5' if args.deep else 'size'} checked)")
  return 0


COMMANDS = [
  Command(
    "generate-metadata",
    "write _tfrecord_metadata.json for the matching files",
    _generate_arguments,
    _generate,
  ),
  Command(
    "total-examples", "print the number of records of the matching files", _pattern_argument, _total_examples
  ),
  Command("validate", "check the matching files against their metadata", _validate_arguments, _validate),
]

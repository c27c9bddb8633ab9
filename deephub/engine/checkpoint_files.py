"""What a model_dir holds, read without trusting it: the checkpoints on disk and the state file.

The `checkpoint` state file is a hint, not the truth: it can be empty,
garbage, or name a checkpoint whose files are gone, and a checkpoint it
names can be truncated. So the candidates are the union of the checkpoints
found on disk (`model.ckpt-<step>.*`) and those the state file names,
newest step first, and `restore_newest` takes the first one that actually
reads. It warns once, naming every file it passed over and why, and stops
with one line when checkpoints exist but none reads: a run never starts
from step 0 beside checkpoints it could not read.
"""

import dataclasses
import os
import re
from collections.abc import Callable
from typing import TypeVar

import tensorflow as tf
from absl import logging

from deephub.errors import UserError

PREFIX = "model.ckpt"
STATE_FILE = "checkpoint"
# `model.ckpt-<step>` followed by a file suffix (.index, .data-*, .input_state.*, .meta).
_FILE = re.compile(rf"^{re.escape(PREFIX)}-(\d+)\.")
_STEP = re.compile(r"-(\d+)$")
# The lines of a text-format CheckpointState; newer TF adds the timestamp keys.
_STATE_LINE = re.compile(
  r'^\s*(model_checkpoint_path|all_model_checkpoint_paths)\s*:\s*"([^"\\]*)"\s*$'
  r"|^\s*(all_model_checkpoint_timestamps|last_preserved_timestamp)\s*:\s*[-+.\deE]+\s*$"
)
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class StateFile:
  """The `checkpoint` state file as read: names oldest first, or why it is unusable."""

  exists: bool
  latest: str | None = None
  listed: tuple[str, ...] = ()
  problem: str | None = None


def step_of(name: str) -> int | None:
  """The step of `model.ckpt-<step>` (or any prefix ending in -<digits>), else None."""
  match = _STEP.search(name)
  return int(match.group(1)) if match else None


def rank(name: str) -> int:
  """The step of `name` for sorting; an unnumbered name ranks below step 0."""
  step = step_of(name)
  return -1 if step is None else step


def read_state(model_dir: str) -> StateFile:
  """Parses `model_dir/checkpoint` without raising; a damaged file gets a `problem`."""
  path = os.path.join(model_dir, STATE_FILE)
  if not tf.io.gfile.exists(path):
    return StateFile(exists=False)
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      raw = f.read(1 << 20)  # A real state file is a few KB; never read a huge one whole.
    text = raw.decode("utf-8")
  except UnicodeDecodeError:
    return StateFile(exists=True, problem="not text (random bytes?)")
  except tf.errors.OpError as error:
    return StateFile(exists=True, problem=first_line(error.message))
  latest, listed = None, []
  for number, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    match = _STATE_LINE.match(line)
    if match is None:
      return StateFile(exists=True, problem=f"line {number} is not CheckpointState text")
    if match.group(1) == "model_checkpoint_path":
      latest = match.group(2)
    elif match.group(1):
      listed.append(match.group(2))
  if latest is None:
    return StateFile(exists=True, problem="empty" if not text.strip() else "names no model_checkpoint_path")
  if latest not in listed:
    listed.append(latest)
  return StateFile(exists=True, latest=latest, listed=tuple(listed))


def _resolve(model_dir: str, name: str) -> str:
  """A state-file path as TF resolves it: relative paths are inside model_dir."""
  return name if os.path.isabs(name) or "://" in name else os.path.join(model_dir, name)


def on_disk(model_dir: str) -> dict[str, list[str]]:
  """{checkpoint name: its file names} for every `model.ckpt-<step>.*` file in model_dir."""
  files: dict[str, list[str]] = {}
  for path in tf.io.gfile.glob(os.path.join(model_dir, f"{PREFIX}-*")):
    base = os.path.basename(path)
    match = _FILE.match(base)
    if match:
      files.setdefault(f"{PREFIX}-{match.group(1)}", []).append(base)
  return files


def candidates(model_dir: str, state: StateFile | None = None) -> list[str]:
  """Checkpoint prefixes on disk or named by the state file, newest step first."""
  state = state if state is not None else read_state(model_dir)
  found = on_disk(model_dir)
  prefixes = {os.path.join(model_dir, name) for name in found}
  # Estimators write absolute paths: a copied model_dir's own files win over the old location.
  prefixes.update(_resolve(model_dir, name) for name in state.listed if os.path.basename(name) not in found)
  # Unnumbered names (only possible through the state file) rank below every step.
  return sorted(prefixes, key=lambda p: (rank(p), p), reverse=True)


def complete(model_dir: str) -> list[str]:
  """Names of the checkpoints on disk that have an index, oldest first (no read check)."""
  names = [name for name, files in on_disk(model_dir).items() if f"{name}.index" in files]
  return sorted(names, key=rank)


def missing_files(prefix: str) -> str | None:
  """Why `prefix` cannot be a checkpoint from its file names alone, or None."""
  if tf.io.gfile.exists(f"{prefix}.index"):
    return None
  if tf.io.gfile.glob(f"{prefix}.*"):
    return f"no {os.path.basename(prefix)}.index"
  return "named by the checkpoint state file, but it has no files"


@dataclasses.dataclass(frozen=True)
class Found:
  """The checkpoint `restore_newest` read, what `read` returned, and what it passed over."""

  prefix: str
  value: object
  passed_over: tuple[str, ...]


def restore_newest(model_dir: str, read: Callable[[str], _T], *, what: str, fix: str) -> Found | None:
  """Calls `read(prefix)` on the newest candidate checkpoint that reads.

  Args:
    model_dir: the folder to look in.
    read: reads (and may apply) a checkpoint; a `tf.errors.OpError` marks it
      damaged and the next older candidate is tried. A UserError (another
      model's checkpoint) is not damage and propagates.
    what: who reads, for the messages (e.g. "training", "warm start").
    fix: what to do when nothing reads, for the one-line error.

  Returns:
    The checkpoint read, or None when model_dir holds neither checkpoint
    files nor a state file.

  Raises:
    UserError: there are checkpoint files or a state file, but no checkpoint reads.
  """
  state = read_state(model_dir)
  prefixes = candidates(model_dir, state)
  if not prefixes and not state.exists:
    return None
  passed: list[tuple[str, str]] = []
  if state.problem:
    passed.append((os.path.join(model_dir, STATE_FILE), state.problem))
  for prefix in prefixes:
    reason = missing_files(prefix)
    if reason is None:
      try:
        value = read(prefix)
      except tf.errors.OpError as error:
        reason = first_line(error.message)
      else:
        if passed:
          logging.warning(
            "%s: passed over damaged checkpoint files in %s: %s; using %s",
            what,
            model_dir,
            "; ".join(f"{os.path.basename(p)} ({why})" for p, why in passed),
            os.path.basename(prefix),
          )
        return Found(prefix=prefix, value=value, passed_over=tuple(p for p, _ in passed))
    passed.append((prefix, reason))
  listing = "; ".join(f"{os.path.basename(p)} ({why})" for p, why in passed)
  raise UserError(f"{what}: no checkpoint in {model_dir} is readable: {listing}; {fix}")


def first_line(message: str) -> str:
  """An OpError's message without TF's op-context prefix, short enough for one line."""
  line = (message or "").strip().splitlines()[0] if (message or "").strip() else "unreadable"
  line = re.sub(r"^\{\{[^}]*\}\}\s*", "", line)  # {{function_node __wrapped__RestoreV2...}}
  line = re.sub(r"\s*\[Op:\w+\]$", "", line)
  return line[:160]

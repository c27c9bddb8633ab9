"""Reading one YAML file of a legacy variant: opened once, parsed once, within limits.

The file is opened once (non-blocking, so a FIFO cannot hang the open), must
be a regular file (checked on the open descriptor, so a swap after a check
changes nothing), is read whole up to `MAX_FILE_BYTES` and parsed once by a
safe loader: PyYAML's `SafeConstructor` (plain data only: a `!!python/...` tag
is an error) fed by a composer that refuses anchors and aliases and bounds
nesting depth and node count. Nothing else ever sees the text.
"""

import os
import stat

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from deephub.errors import UserError

MAX_FILE_BYTES = 10 * 1024 * 1024  # A 50 MB variant once took minutes and 880 MB to read.
MAX_DEPTH = 32  # Nested mappings/lists; real variants stay under 8.
MAX_NODES = 100_000  # Scalars, mappings and lists per file; real variants hold a few hundred.


class _Refused(yaml.MarkedYAMLError):
  """A limit of this loader, raised from inside PyYAML's composer."""


class _LimitedComposer(Composer):
  """PyYAML's composer with no anchors or aliases and bounded depth and size.

  Anchors are refused outright: an alias bomb (each level naming the one below
  nine times) builds a tiny tree that expands to billions of values when merged.
  """

  def compose_node(self, parent, index):
    event = self.peek_event()
    if isinstance(event, yaml.AliasEvent):
      self._refuse(event, "YAML aliases (*name) are not supported; write the values out")
    if getattr(event, "anchor", None) is not None:
      self._refuse(event, "YAML anchors (&name) are not supported; write the values out")
    self._nodes = getattr(self, "_nodes", 0) + 1
    if self._nodes > MAX_NODES:
      self._refuse(event, f"more than {MAX_NODES} values; a variant is a small config")
    self._depth = getattr(self, "_depth", 0) + 1
    try:
      if self._depth > MAX_DEPTH:
        self._refuse(event, f"nested deeper than {MAX_DEPTH} levels")
      return super().compose_node(parent, index)
    finally:
      self._depth -= 1

  @staticmethod
  def _refuse(event, problem: str) -> None:
    raise _Refused(problem=problem, problem_mark=event.start_mark)


if yaml.__with_libyaml__:
  from yaml.cyaml import CParser

  # libyaml's C parser emits the events; the composing and constructing stay
  # PyYAML's safe Python classes (as in CSafeLoader), with the limits above.
  # About 2.5x faster than the pure-Python parser on large files. The
  # composer comes first in the MRO, so its node methods replace CParser's.
  class _Loader(_LimitedComposer, CParser, SafeConstructor, Resolver):
    def __init__(self, stream):
      CParser.__init__(self, stream)
      SafeConstructor.__init__(self)
      Resolver.__init__(self)
      _LimitedComposer.__init__(self)
else:

  class _Loader(_LimitedComposer, yaml.SafeLoader):
    pass


def read_bytes(path: str) -> bytes:
  """Opens `path` once and returns its bytes.

  Raises:
    UserError: missing or unreadable, not a regular file, or over MAX_FILE_BYTES.
  """
  try:
    # stat first so a device is never opened (opening one can act on it); the
    # fstat below is what counts, since the path may change in between.
    if not stat.S_ISREG(os.stat(path).st_mode):
      raise UserError(_not_regular(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
  except OSError as error:
    raise UserError(f"cannot read YAML variant file {path}: {error.strerror}") from None
  try:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
      raise UserError(_not_regular(path))
    if info.st_size > MAX_FILE_BYTES:
      raise UserError(_too_big(path))
    chunks, size = [], 0
    while chunk := os.read(fd, 1 << 20):
      chunks.append(chunk)
      size += len(chunk)
      if size > MAX_FILE_BYTES:  # It grew after the fstat.
        raise UserError(_too_big(path))
    return b"".join(chunks)
  except OSError as error:
    raise UserError(f"cannot read YAML variant file {path}: {error.strerror}") from None
  finally:
    os.close(fd)


def parse(text: bytes, path: str):
  """Parses one YAML document from `text` into plain data (dicts, lists, scalars).

  Raises:
    UserError: not YAML, a non-standard tag, an anchor or alias, or a limit.
      The message names `path` and a line, never the file's text.
  """
  loader = _Loader(text)
  try:
    return loader.get_single_data()
  except yaml.YAMLError as error:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f" (line {mark.line + 1})" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error)
    raise UserError(f"{path} is refused{where}: {_plain(problem)}; variants hold plain YAML only") from None
  except (ValueError, TypeError, OverflowError, RecursionError) as error:  # e.g. a 5,000-digit int.
    raise UserError(f"{path} is refused: a value cannot be read ({type(error).__name__})") from None
  finally:
    loader.dispose()


def _plain(text: str, limit: int = 120) -> str:
  """One line of printable ASCII at most `limit` long (PyYAML names the odd tag or character)."""
  text = "".join(c if c.isascii() and c.isprintable() else "?" for c in " ".join(str(text).split()))
  return text if len(text) <= limit else text[:limit] + "..."


def _not_regular(path: str) -> str:
  return f"{path} is not a regular file (a FIFO, device, socket or folder); name a YAML file"


def _too_big(path: str) -> str:
  return f"{path} is over {MAX_FILE_BYTES // (1024 * 1024)} MB; a YAML variant is a small config"

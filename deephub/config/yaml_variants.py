"""Legacy YAML variants: metayaml-format files read safely onto the same ConfigDict as Python variants.

A YAML variant holds `model` / `train` / `runtime` sections. The file format
is the `metayaml` package's, but deephub reads it itself; no metayaml, Jinja
or unsafe PyYAML loader ever sees the text, so a hostile file runs no code.
Supported, as metayaml did it:

- `extend: path` or `extend: [paths]`: other files merged first, paths
  relative to the including file, globs allowed (sorted); the including file's
  values win. Mappings merge key by key; any other value replaces. A file
  reached twice (a diamond) is read once.
- `${expr}` in a value, evaluated when its file is merged: lookups of values
  merged so far (`${train.epochs}`, `${deephub_data_dir}` for the bundled
  data folder `deephub/resources/blobs/data`) and arithmetic, see
  `deephub.yaml_templates`. A template alone keeps the value's type (a
  number, a mapping); inside text it is joined in, and text that reads as a
  number becomes one.
- `$(expr)`: the same expressions, evaluated after every file is merged
  (references to the final config, a mapping included).
- metayaml's markers: `key: ${__del__}` removes a key, a `${__del_all__}` key
  empties the mapping first, `${__inherit__}: a.b` starts the mapping from a
  copy of mapping `a.b`, and `key: {${__extend__}: [items]}` appends to a list.

A value a template produced is data: it is never evaluated again, so a
template that builds the text `$(...)` yields that text. Not supported
(refused with one line): YAML tags beyond plain data (`!!python/...`),
anchors and aliases, templates in keys or in `extend:` paths, Jinja
statements, and a value mixing `${...}` with `$(...)`.

Limits, each a one-line `UserError` naming the file: 10 MB and 100,000 values
per file, 32 levels of nesting (`deephub.yaml_files`), 64 files in the
extend chain, no extend cycles, 16 nested `$(...)` references, and 500,000
values built in all (merges and copies). Errors show a key or value only
when it is short and plain (40 characters), never a file's text.

Used by `deephub.variants` for `<variant>.yaml`, and as a config file for
`--config=<this file>:<variant.yaml>` (ml_collections passes the text after
the colon to `get_config`).
"""

import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ml_collections

from deephub.config import defaults, yaml_files, yaml_spelling, yaml_templates
from deephub.errors import UserError, closest
from deephub.resources import toy_data_dir

EXTEND_KEY = "extend"
DATA_DIR_KEY = "deephub_data_dir"
DEL_MARKER = "${__del__}"
DEL_ALL_MARKER = "${__del_all__}"
EXTEND_MARKER = "${__extend__}"
INHERIT_MARKER = "${__inherit__}"
MAX_FILES = 64
# $(...) references followed through other $(...) references; each level costs
# up to ~70 Python frames (a 32-deep expression), so 16 stays far from the
# interpreter's recursion limit.
MAX_REFERENCES = 16
MAX_VALUES = 500_000  # Values built while merging and copying; real variants build a few thousand.
MAX_TEXT = 64 * 1024 * 1024  # Characters of all the strings templates build.
# Sections whose keys are feature names or a user class's arguments, not config keys.
_FREE_FORM = ("features_map", "labels_map", "warm_start_var_name_map", "init_args")
_FREE_FORM_PATHS = ("train.exporters.custom",)
_ADVICE = "templates may only look up values (${section.key}) and do arithmetic"


@dataclass(frozen=True, eq=False)
class _Lazy:
  """A `$(...)` value from a file's own text, evaluated after all files are merged."""

  template: yaml_templates.Template
  file: str
  where: str


class _Reader:
  """Reads one variant's extend chain and merges it into one plain dict."""

  def __init__(self):
    self.files: list[str] = []  # Absolute paths, in the order they were reached.
    self.data: dict = {DATA_DIR_KEY: os.path.dirname(toy_data_dir())}
    self._open: list[str] = []  # Real paths of the files being read (cycle check).
    self._done: set[str] = set()
    self._file = ""
    self._values = 0
    self._text = 0
    self._active: list[_Lazy] = []

  def read(self, path: str) -> None:
    """Reads `path` after the files it extends, merging each into `self.data`."""
    path = os.path.abspath(path)
    real = os.path.realpath(path)
    if real in self._open:
      chain = " -> ".join(os.path.basename(p) for p in [*self._open, real])
      raise UserError(f"{path}: extend cycle ({chain}); a file cannot extend itself")
    if real in self._done:
      return
    if len(self.files) >= MAX_FILES:
      raise UserError(f"{path}: the extend chain holds more than {MAX_FILES} files; merge some of them")
    self.files.append(path)
    data = yaml_files.parse(yaml_files.read_bytes(path), path)
    if data is None:
      data = {}
    if not isinstance(data, dict):
      raise UserError(f"{path} holds a {type(data).__name__}; a YAML variant is a mapping of sections")
    self._open.append(real)
    for match in self._extends(data.pop(EXTEND_KEY, None), path):
      self.read(match)
    self._open.pop()
    self._done.add(real)
    self._file = path
    self._merge(self.data, data, where=(), evaluate=True)

  def _extends(self, extends: Any, path: str) -> list[str]:
    entries = [] if extends is None else [extends] if isinstance(extends, str) else extends
    if not isinstance(entries, list):
      raise UserError(f"{path}: extend must be a file path or a list of them")
    matches = []
    for entry in entries:
      if not isinstance(entry, str) or "${" in entry or "$(" in entry:
        raise UserError(
          f"{path}: extend entry {_show(entry)} must be a plain file path or glob, without ${{...}}"
        )
      pattern = os.path.join(os.path.dirname(path), entry)  # An absolute entry stays absolute.
      found = sorted(glob.glob(pattern))
      if not found:
        raise UserError(f"{path}: extend entry {_show(entry)} matches no file; fix the path")
      matches += found
    return matches

  def _merge(self, dest: dict, source: dict, *, where: tuple, evaluate: bool) -> None:
    """Merges `source` into `dest` as metayaml did; `evaluate=False` for values that are data already."""
    if evaluate and DEL_ALL_MARKER in source:
      dest.clear()
    if evaluate and INHERIT_MARKER in source:
      target = self._scalar(f"${{{source[INHERIT_MARKER]}}}", (*where, INHERIT_MARKER))
      if not isinstance(target, dict):
        raise UserError(f"{self._file}: {_path(where)} inherits a {type(target).__name__}; name a mapping")
      self._merge(dest, target, where=where, evaluate=False)
    for key, value in source.items():
      at = (*where, key)
      if len(at) > yaml_files.MAX_DEPTH:
        raise UserError(f"{self._file}: {_path(where)} nests deeper than {yaml_files.MAX_DEPTH} levels")
      self._spend(1)
      if evaluate:
        if key in (DEL_ALL_MARKER, INHERIT_MARKER):
          continue
        if isinstance(key, str) and ("${" in key or "$(" in key):
          raise UserError(
            f"{self._file}: a key under {_path(where)} is refused: templates in keys are not supported"
          )
        if isinstance(value, str) and value == DEL_MARKER:
          dest.pop(key, None)
          continue
      existing = dest.get(key)
      if isinstance(value, dict):
        if evaluate and list(value) == [EXTEND_MARKER] and (existing is None or isinstance(existing, list)):
          items = value[EXTEND_MARKER]
          if not isinstance(items, list):
            raise UserError(f"{self._file}: {_path(at)}: {EXTEND_MARKER} takes a list")
          dest[key] = [*(existing or []), *self._list(items, at)]
        elif isinstance(existing, dict) and existing:
          self._merge(existing, value, where=at, evaluate=evaluate)
        elif not existing:
          dest[key] = {}  # In place before its values, which may refer to earlier ones.
          self._merge(dest[key], value, where=at, evaluate=evaluate)
        else:
          kind = type(existing).__name__
          raise UserError(f"{self._file}: {_path(at)} is a mapping; it cannot merge into a {kind}")
      elif isinstance(value, list):
        if isinstance(existing, dict) and existing:
          raise UserError(f"{self._file}: {_path(at)} is a list; it cannot merge into a mapping")
        dest[key] = self._list(value, at) if evaluate else value
      else:
        dest[key] = self._scalar(value, at) if evaluate else value

  def _list(self, items: list, where: tuple) -> list:
    result = []
    for i, item in enumerate(items):
      self._spend(1)
      if isinstance(item, dict):
        result.append({})
        self._merge(result[-1], item, where=(*where, i), evaluate=True)
      elif isinstance(item, list):
        result.append(self._list(item, (*where, i)))
      else:
        result.append(self._scalar(item, (*where, i)))
    return result

  def _scalar(self, value: Any, where: tuple) -> Any:
    """A file's value with its `${...}` evaluated now, or a `$(...)` kept for later."""
    if not isinstance(value, str) or ("${" not in value and "$(" not in value):
      return value
    try:
      if "${" in value and "$(" in value:
        raise yaml_templates.TemplateError("a value mixes ${...} and $(...)", refused=True)
      if "$(" in value:
        return _Lazy(yaml_templates.parse(value, "$("), self._file, _path(where))
      result = yaml_templates.evaluate(yaml_templates.parse(value, "${"), self.data, resolve=_same)
    except yaml_templates.TemplateError as error:
      raise _template_error(error, self._file, _path(where)) from None
    return self._built(result, len(where))

  def _built(self, value: Any, depth: int) -> Any:
    """A template's result as a fresh copy, so later merges into it never change its source."""
    if depth > yaml_files.MAX_DEPTH:
      raise UserError(f"{self._file}: a ${{...}} copy nests deeper than {yaml_files.MAX_DEPTH} levels")
    self._spend(1)
    if isinstance(value, dict):
      return {key: self._built(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
      return [self._built(item, depth + 1) for item in value]
    if isinstance(value, str):
      self._text += len(value)
      if self._text > MAX_TEXT:
        raise UserError(f"{self._file}: templates build over {MAX_TEXT // 2**20} MB of text")
    return value

  def resolved(self, value: Any, depth: int = 0) -> Any:
    """A copy of `value` with every `$(...)` replaced by its value in the merged config."""
    if isinstance(value, _Lazy):
      self._enter(value)
      try:
        return self.resolved(self._evaluate(value), depth)
      finally:
        self._active.pop()
    if isinstance(value, dict):
      self._check_depth(depth)
      self._spend(1)
      return {key: self.resolved(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
      self._check_depth(depth)
      self._spend(1)
      return [self.resolved(item, depth + 1) for item in value]
    return self._built(value, 0)

  def _check_depth(self, depth: int) -> None:
    if depth > yaml_files.MAX_DEPTH:
      raise UserError(f"{self._file}: a $(...) reference nests deeper than {yaml_files.MAX_DEPTH} levels")

  def _enter(self, lazy: _Lazy) -> None:
    if any(active is lazy for active in self._active):
      raise UserError(f"{lazy.file}: {lazy.where} refers to itself through $(...) references")
    if len(self._active) >= MAX_REFERENCES:
      first = self._active[0]  # The value whose chain is too long.
      raise UserError(f"{first.file}: {first.where}: $(...) references nest deeper than {MAX_REFERENCES}")
    self._active.append(lazy)

  def _evaluate(self, lazy: _Lazy) -> Any:
    try:
      return yaml_templates.evaluate(lazy.template, self.data, resolve=self._step)
    except yaml_templates.TemplateError as error:
      raise _template_error(error, lazy.file, lazy.where) from None

  def _step(self, value: Any) -> Any:
    """A value a `$(...)` lookup reached, itself evaluated if it is a `$(...)`."""
    while isinstance(value, _Lazy):
      self._enter(value)
      try:
        value = self._evaluate(value)
      finally:
        self._active.pop()
    return value

  def _spend(self, count: int) -> None:
    self._values += count
    if self._values > MAX_VALUES:
      raise UserError(
        f"{self._file}: the variant builds over {MAX_VALUES} values (extend merges and template copies); "
        "a variant is a small config"
      )


def _same(value: Any) -> Any:
  return value


def _template_error(error: yaml_templates.TemplateError, file: str, where: str) -> UserError:
  if error.refused:
    return UserError(f"{file}: {where} is refused: {error}; {_ADVICE}")
  return UserError(f"{file}: {where}: {error}")


def _path(where: tuple) -> str:
  """A dotted key path for a message; keys that are not short plain names are not echoed."""
  return ".".join(_key_text(key) for key in where) or "the top level"


def _key_text(key: Any) -> str:
  text = str(key)
  if len(text) <= 40 and text.isascii() and all(c.isalnum() or c in "_-" for c in text):
    return text
  if key in (DEL_MARKER, DEL_ALL_MARKER, EXTEND_MARKER, INHERIT_MARKER):
    return text
  return f"<a key of {len(text)} characters>"


def _show(value: Any) -> str:
  """A value for a message: its repr when short and printable, else only its type and size."""
  text = repr(value)
  if len(text) <= 40 and text.isascii() and text.isprintable():
    return text
  size = f" of {len(value)}" if isinstance(value, (str, list, dict)) else ""
  return f"<a {type(value).__name__}{size}>"


def check_safe(path: str) -> list[str]:
  """Reads `path` and its extend chain under the limits, running nothing.

  Returns:
    The absolute paths read, in the order they were reached.

  Raises:
    UserError: a file is missing, not plain YAML, over a limit, or holds a
      template outside the subset.
  """
  return _read(path).files


def read_definition(path: str) -> dict:
  """Returns the merged plain dict of the YAML variant at `path` (its extend chain merged)."""
  data = _read(path).data
  data.pop(DATA_DIR_KEY, None)
  return data


def _read(path: str) -> _Reader:
  reader = _Reader()
  try:
    reader.read(path)
    reader.data = reader.resolved(reader.data)
  except RecursionError:  # A backstop: the limits above keep the nesting well below it.
    raise UserError(f"{path}: the variant nests too deeply (extends, mappings or references)") from None
  return reader


def _model_type(model: dict, path: str) -> None:
  """Accepts the later `class_type` + `module_path` spelling of `type`."""
  if "class_type" not in model and "module_path" not in model:
    return
  if "type" in model or "class_type" not in model:
    raise UserError(
      f"{path}: model sets {sorted(k for k in ('type', 'class_type', 'module_path') if k in model)}; "
      "use either type: 'file:Class' or class_type (with an optional module_path)"
    )
  class_type = model.pop("class_type")
  module_path = model.pop("module_path", "")
  model["type"] = f"{module_path}:{class_type}" if module_path else class_type


def config_from_definition(definition: Mapping[str, Any], *, path: str) -> ml_collections.ConfigDict:
  """Maps a YAML variant's dict onto `defaults.base_config()` and locks it.

  `model` takes any extra key (the model's parameters); elsewhere an unknown
  key is an error naming the closest ones, as for Python variants. The old
  framework's later spelling (`module_path` + `class_type` feeders and
  exporters, a `predict:` section) is mapped first (`deephub.config.yaml_spelling`).

  Raises:
    UserError: an unknown section or key, or a value of the wrong type.
  """
  config = defaults.base_config()
  definition = yaml_spelling.normalize(definition, path=path)
  if isinstance(definition.get("model"), dict):
    definition["model"] = dict(definition["model"])
    _model_type(definition["model"], path)
  _merge(config, definition, path=path, where="", open_keys=False)
  config.lock()
  return config


def _merge(
  section: ml_collections.ConfigDict, values: Mapping, *, path: str, where: str, open_keys: bool
) -> None:
  for key, value in values.items():
    key = str(key)
    name = f"{where}{key}"
    shown = repr(name) if _key_text(key) == key else f"{where}{_key_text(key)}"
    if key not in section and not open_keys:
      raise UserError(f"{path}: unknown key {shown}; closest: {closest(name, _names(section, where))}")
    if key in section and isinstance(section[key], ml_collections.ConfigDict) and isinstance(value, dict):
      child_open = name == "model" or key in _FREE_FORM or name in _FREE_FORM_PATHS or open_keys
      _merge(section[key], value, path=path, where=f"{name}.", open_keys=child_open)
      continue
    try:  # A new key's dict value becomes a ConfigDict too, which refuses dotted keys.
      section[key] = value
    except (TypeError, ValueError) as error:
      # ml_collections' message repeats the value: only a short plain one is shown.
      detail = " ".join(str(error).split()) if _show(value) == repr(value) else type(value).__name__
      raise UserError(f"{path}: {shown.strip(chr(39))} = {_show(value)}: {detail}") from None


def _names(section: ml_collections.ConfigDict, where: str) -> list[str]:
  return [f"{where}{key}" for key in section]


def load_yaml_variant(path: str) -> ml_collections.ConfigDict:
  """Reads, checks and maps the YAML variant at `path`; returns a locked ConfigDict."""
  return config_from_definition(read_definition(path), path=path)


def get_config(path: str) -> ml_collections.ConfigDict:
  """ml_collections config-file hook: `--config=<this file>:<variant.yaml>`."""
  return load_yaml_variant(path)

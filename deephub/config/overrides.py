"""Overrides of a loaded config: the one parser of `deep -p/-P KEY VALUE` and `--config.KEY=VALUE`.

Values are read as Python or YAML literals (`15`, `4.0`, `[1, "a"]`, `False`,
`null`) or arithmetic over literals (`100/5`, `2**10`, see
`deephub.config.literals`), and anything else stays the string the user
typed, so a glob such as `data/train-*` stays a path. Nothing is ever
evaluated as code: only `ast.literal_eval`, the literal walker and
`yaml.safe_load` look at the text. `-P` (`Override.plain`) takes the text as
it is.

Keys must exist in the config, so a typo fails with the closest keys, except
under `model.`: model params are open, and a new `model.NAME` is accepted
when `model.type`'s class takes a keyword `NAME` (the class validates it, as
it validates the variant's own keys).
"""

import ast
from collections.abc import Iterable
from typing import Any, NamedTuple

import ml_collections
import yaml

from deephub.config import literals, variants, yaml_spelling
from deephub.errors import UserError, closest

# What yaml.safe_load may turn a value into; anything else (dates, for
# example) keeps the user's text.
_PLAIN_TYPES = (bool, int, float, type(None), list, dict)
# Nesting levels a value may have: far more than any config needs, far fewer
# than the ~1000 Python frames the parsers (and later the config writers)
# spend one of per level.
MAX_DEPTH = 64
_OPENERS, _CLOSERS = "[{(", "]})"


class NestingError(UserError):
  """A value nests lists or dicts deeper than `MAX_DEPTH`, or repeats one through a YAML alias."""


class ValueTooLarge(UserError):
  """Arithmetic in a value would build a number or string over the bounds (`9**9**9`)."""


class Override(NamedTuple):
  """One `KEY VALUE` from the command line; a plain `(key, text)` pair works too."""

  key: str
  text: str
  # True for -P: the text is the value, never parsed.
  plain: bool = False
  # How the user spelt the flag, for messages: '-p' (also -P), or '--config.' (python -m deephub.train).
  flag: str = "-p"

  @property
  def where(self) -> str:
    """The flag and key as typed: `-p model.x` or `--config.model.x`."""
    return f"{self.flag}{self.key}" if self.flag.endswith(".") else f"{self.flag} {self.key}"

  @property
  def shown(self) -> str:
    """The flag, key and value as typed: `-p model.x 'abc'` or `--config.model.x=abc`."""
    return f"{self.where}={self.text}" if self.flag.endswith(".") else f"{self.where} {self.text!r}"


def parse_value(text: str) -> Any:
  """Returns `text` as a Python/YAML literal, or unchanged when it is not one.

  Examples: '15' -> 15, '4.0' -> 4.0, '[1, "a"]' -> [1, 'a'], 'False' -> False,
  'true' -> True, 'null' -> None, '100/5' -> 20.0, '2**10' -> 1024,
  'data/train-*' -> 'data/train-*'.

  Raises:
    NestingError: the text nests brackets deeper than `MAX_DEPTH`, or parses
      to a value that does (YAML block style nests without brackets).
    ValueTooLarge: arithmetic whose result would be over the bounds of
      `deephub.config.literals` (refused before it is computed).
  """
  _check_depth(text, _bracket_depth(text))
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
    try:
      value = literals.evaluate(text)  # `100/5`, `2**10`: arithmetic over literals.
    except literals.TooLarge as error:
      shown = text if len(text) <= 24 else text[:20] + "..."
      raise ValueTooLarge(f"the value {shown!r} is refused: {error}") from None
    except literals.NotALiteral:
      value = _yaml_or_text(text)
  _check_depth(text, _value_depth(value))
  return value


def _yaml_or_text(text: str) -> Any:
  """`text` read as plain YAML data (`true`, `null`, block lists), else unchanged."""
  try:
    value = yaml.safe_load(text)
  except yaml.YAMLError:
    return text
  except RecursionError:
    _check_depth(text, MAX_DEPTH + 1)
  return value if isinstance(value, _PLAIN_TYPES) else text


def _check_depth(text: str, depth: int) -> None:
  if depth > MAX_DEPTH:
    shown = text if len(text) <= 24 else text[:20] + "..."
    raise NestingError(
      f"the value {shown!r} nests deeper than {MAX_DEPTH} levels; no config value needs that, flatten it"
    )


def _bracket_depth(text: str) -> int:
  """The deepest bracket nesting in `text`, counted without parsing (so without recursion).

  Brackets inside quotes count too: an over-estimate only for strings that
  hold dozens of brackets.
  """
  depth = deepest = 0
  for char in text:
    if char in _OPENERS:
      depth += 1
      deepest = max(deepest, depth)
    elif char in _CLOSERS:
      depth = max(depth - 1, 0)
  return deepest


def _value_depth(value: Any) -> int:
  """Nesting levels of lists, tuples and dicts in a parsed value, walked without recursion.

  Raises:
    NestingError: a list or dict appears twice, which only a YAML alias
      makes: nested aliases expand exponentially once the config is written.
  """
  deepest, stack, seen = 0, [(value, 0)], set()
  while stack:
    item, depth = stack.pop()
    if isinstance(item, (list, tuple, set, dict)):
      if id(item) in seen:
        raise NestingError("the value repeats a list or dict through a YAML alias (*name); write it out")
      seen.add(id(item))
      deepest = max(deepest, depth + 1)
      if deepest > MAX_DEPTH:
        break
      children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
      stack.extend((child, depth + 1) for child in children)
  return deepest


def _coerce(override: Override, current: Any, field_type: type) -> Any:
  """Parses the override's text for a field of `field_type` that now holds `current` (the type wins)."""
  if override.plain and isinstance(current, list):
    return [override.text]  # -P on a list field: one item, as typed.
  if override.plain or (isinstance(current, str) and field_type is not object):
    return override.text  # -P, or a string field: the text as typed (`-p model.model_dir 2024`).
  value = parse_value(override.text)
  if isinstance(current, list):
    return list(value) if isinstance(value, (list, tuple)) else [value]
  if field_type is object and not isinstance(value, (bool, str)):
    # The one `object` field, a feeder's shuffle, holds a bool or 'global'.
    raise UserError(f"{override.shown}: expected True or False, or a word such as 'global'")
  if isinstance(current, bool) and not isinstance(value, bool) and field_type is not object:
    raise UserError(f"{override.shown}: expected True or False")
  if field_type is float and isinstance(value, str):
    try:
      return float(value)  # `nan`, `inf`: floats Python reads but no literal spells.
    except ValueError:
      pass  # Not a number: ml-collections refuses it below, naming the field.
  if field_type is int and isinstance(value, float) and value.is_integer():
    return int(value)  # `-p train.epochs 100/5`: `/` gives 20.0, as it did under the old framework's eval.
  return value


def apply_overrides(config: ml_collections.ConfigDict, pairs: Iterable[Override | tuple[str, str]]) -> None:
  """Sets each dotted key of the locked config to its parsed value, in order.

  Args:
    config: the loaded variant (locked).
    pairs: `Override`s, or `(key, text)` pairs read as `-p KEY TEXT`.

  Raises:
    UserError: an unknown key (the message names the closest ones), a new
      `model.` key that `model.type` does not take, or a value of the wrong
      type for the field.
  """
  for item in pairs:
    override = item if isinstance(item, Override) else Override(*item)
    # `train.train_feeder.init_args.x` of the later legacy spelling is `train.train_feeder.x`.
    key = yaml_spelling.override_key(config, override.key)
    *parents, leaf = key.split(".")
    if key not in variants.flat_keys(config):
      _check_new_model_key(config, key)
      with config.unlocked():
        config.model[leaf] = override.text if override.plain else _parse(override)
      continue
    section = config
    for part in parents:
      section = section[part]
    current = section[leaf]
    try:
      section[leaf] = _coerce(override, current, section.get_type(leaf))
    except (NestingError, ValueTooLarge) as error:
      raise UserError(f"{override.where}: {error}") from None
    except (TypeError, ValueError) as error:
      shown = type(current).__name__
      if not isinstance(current, ml_collections.ConfigDict):
        shown += f" ({current!r})"
      reason = " ".join(str(error).split())  # ml-collections' messages span lines.
      raise UserError(f"{override.shown}: the field holds {shown}; {reason}") from None


def _parse(override: Override) -> Any:
  try:
    return parse_value(override.text)
  except (NestingError, ValueTooLarge) as error:
    raise UserError(f"{override.where}: {error}") from None


def _check_new_model_key(config: ml_collections.ConfigDict, key: str) -> None:
  """Accepts a new `model.NAME` that `model.type`'s class takes as a keyword; else the typo error.

  Raises:
    UserError: naming the closest config keys and model parameters.
  """
  keys = variants.flat_keys(config)
  parameters = []
  parts = key.split(".")
  if parts[0] == "model" and config.model.type:
    parameters = [f"model.{name}" for name in _model_parameters(config.model.type)]
    parameters = [name for name in parameters if name not in keys]
    if len(parts) == 2 and key in parameters:
      return
  raise UserError(f"unknown config key {key!r}; closest: {closest(key, keys + parameters)}")


def _model_parameters(model_type: str) -> list[str]:
  """The keyword parameters `model.type`'s class takes (what `build_model` passes it)."""
  from deephub import console

  console.load_tensorflow()  # Model modules import TensorFlow: quietly, as training does.
  from deephub import models

  return list(models.model_parameters(models.resolve_model_class(model_type)))

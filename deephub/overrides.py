"""`-p KEY VALUE` overrides of the `deep` CLI: safe value parsing and typed assignment.

Values are read as Python or YAML literals (`15`, `4.0`, `[1, "a"]`, `False`,
`null`) and anything else stays the string the user typed, so a glob such as
`data/train-*` stays a path. Nothing is ever evaluated as code: only
`ast.literal_eval` and `yaml.safe_load` look at the text.
"""

import ast
from collections.abc import Iterable
from typing import Any

import ml_collections
import yaml

from deephub import variants, yaml_spelling
from deephub.errors import UserError

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


def parse_value(text: str) -> Any:
  """Returns `text` as a Python/YAML literal, or unchanged when it is not one.

  Examples: '15' -> 15, '4.0' -> 4.0, '[1, "a"]' -> [1, 'a'], 'False' -> False,
  'true' -> True, 'null' -> None, 'data/train-*' -> 'data/train-*'.

  Raises:
    NestingError: the text nests brackets deeper than `MAX_DEPTH`, or parses
      to a value that does (YAML block style nests without brackets).
  """
  _check_depth(text, _bracket_depth(text))
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
    try:
      value = yaml.safe_load(text)
    except yaml.YAMLError:
      return text
    except RecursionError:
      _check_depth(text, MAX_DEPTH + 1)
    if not isinstance(value, _PLAIN_TYPES):
      return text
  _check_depth(text, _value_depth(value))
  return value


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


def _coerce(key: str, current: Any, text: str) -> Any:
  """Parses `text` for a field that now holds `current` (the field's type wins)."""
  if isinstance(current, str):
    return text  # A string field takes the text as typed: `-p model.model_dir 2024`.
  value = parse_value(text)
  if isinstance(current, list):
    return list(value) if isinstance(value, (list, tuple)) else [value]
  if isinstance(current, bool) and not isinstance(value, bool):
    raise UserError(f"-p {key} {text!r}: expected True or False")
  return value


def apply_overrides(config: ml_collections.ConfigDict, pairs: Iterable[tuple[str, str]]) -> None:
  """Sets each dotted `key` of the locked config to its parsed value, in order.

  Raises:
    UserError: an unknown key (the message names the closest ones) or a value
      of the wrong type for the field.
  """
  for key, text in pairs:
    key = yaml_spelling.override_key(config, key)  # `train.train_feeder.init_args.x` of the old spelling.
    variants.check_key(config, key)
    *parents, leaf = key.split(".")
    section = config
    for part in parents:
      section = section[part]
    current = section[leaf]
    try:
      section[leaf] = _coerce(key, current, text)
    except NestingError as error:
      raise UserError(f"-p {key}: {error}") from None
    except (TypeError, ValueError) as error:
      shown = type(current).__name__
      if not isinstance(current, ml_collections.ConfigDict):
        shown += f" ({current!r})"
      reason = " ".join(str(error).split())  # ml-collections' messages span lines.
      raise UserError(f"-p {key} {text!r}: the field holds {shown}; {reason}") from None

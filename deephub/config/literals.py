"""Arithmetic over literals in `-p` / `--config.` values, as the old framework read them, without `eval`.

The old `deep` ran `eval` on every `-p` value, so scripts pass `100/5`,
`2**10`, `1e-3*4` or `-(3+4)`. Here the value is parsed with `ast` and
walked by the `${...}` evaluator of `deephub.config.yaml_templates`
(its `+ - * / // %`, unary `-` / `+`, string `+` and its bounds), extended
with what a value needs and a template does not: `**`, `None`, and list,
tuple and dict displays. Names, calls, attributes, subscripts and every
other node are outside the subset: such text is not a literal (the caller
keeps it as text).

Bounds: the expression is at most `MAX_SOURCE` characters and
`yaml_templates.MAX_AST_DEPTH` levels; every intermediate integer stays
below 2**63, every float finite, every string under
`yaml_templates.MAX_STRING` characters. `**` checks the size of its result
before computing it, so `9**9**9` is refused at once.
"""

import ast
import math
from typing import Any

from deephub.config import yaml_templates
from deephub.config.yaml_templates import LimitError, TemplateError

# A command-line value can hold a long list of file patterns; far below what
# one argv string may be (128 KiB), and walking it is linear.
MAX_SOURCE = 100_000
_INT_BITS = 63  # yaml_templates.MAX_INT is 2**63.
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_CONSTANTS = (str, int, float, bool, type(None))
# Dict keys a config can hold (ml_collections keys are strings; numbers stay usable in plain dicts).
_KEYS = (str, int, float, bool, type(None))


class NotALiteral(Exception):
  """The text is not an expression of the subset; the caller keeps it as text."""


class TooLarge(Exception):
  """The expression is in the subset but its value would break a bound (`9**9**9`)."""


def evaluate(text: str) -> Any:
  """Returns the value of `text`, an expression over literals.

  Examples: '100/5' -> 20.0, '2**10' -> 1024, '1e-3*4' -> 0.004,
  '-(3+4)' -> -7, '[12, "mixed", 3.0]' -> [12, 'mixed', 3.0].

  Raises:
    NotALiteral: not valid syntax, a node outside the subset, or arithmetic
      that fails (a division by zero, a number minus a string).
    TooLarge: a result that would break a bound, found before it is built.
  """
  if len(text) > MAX_SOURCE:
    raise NotALiteral(f"over {MAX_SOURCE} characters")
  try:
    tree = ast.parse(text.strip(), mode="eval")
  except (SyntaxError, ValueError, RecursionError, MemoryError):
    raise NotALiteral("not valid syntax") from None
  _check(tree.body, depth=1)
  try:
    return _Evaluator().value(tree.body)
  except TooLarge:
    raise
  except LimitError as error:
    raise TooLarge(str(error)) from None
  except TemplateError as error:  # A division by zero, a number minus a string: not a value.
    raise NotALiteral(str(error)) from None


def _check(node: ast.AST, depth: int) -> None:
  """Refuses any node outside the subset before anything is evaluated."""
  if depth > yaml_templates.MAX_AST_DEPTH:
    raise NotALiteral(f"nests deeper than {yaml_templates.MAX_AST_DEPTH} levels")
  if isinstance(node, ast.Constant) and isinstance(node.value, _CONSTANTS):
    return
  if isinstance(node, (ast.List, ast.Tuple)) and isinstance(node.ctx, ast.Load):
    for element in node.elts:
      _check(element, depth + 1)
    return
  if isinstance(node, ast.Dict) and None not in node.keys:  # `{**other}` has a None key.
    for child in (*node.keys, *node.values):
      _check(child, depth + 1)
    return
  if isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
    _check(node.left, depth + 1)
    return _check(node.right, depth + 1)
  if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
    return _check(node.operand, depth + 1)
  raise NotALiteral(f"a {type(node).__name__} expression is not a literal")


class _Evaluator(yaml_templates._Evaluator):
  """The template evaluator over no config (nothing to look up), plus displays and `**`."""

  def __init__(self):
    super().__init__({}, resolve=lambda value: value)

  def value(self, node: ast.expr) -> Any:
    if isinstance(node, ast.List):
      return [self.value(element) for element in node.elts]
    if isinstance(node, ast.Tuple):
      return tuple(self.value(element) for element in node.elts)
    if isinstance(node, ast.Dict):
      return self._dict(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
      return power(self.value(node.left), self.value(node.right))
    return super().value(node)  # Constants, unary and the other binary operators.

  def _dict(self, node: ast.Dict) -> dict:
    result = {}
    for key_node, value_node in zip(node.keys, node.values, strict=True):
      key = self.value(key_node)
      if not isinstance(key, _KEYS):
        raise NotALiteral(f"a dict key is a {type(key).__name__}")
      result[key] = self.value(value_node)
    return result


def power(base: Any, exponent: Any) -> int | float:
  """`base ** exponent` for numbers, refusing a result over the bounds before computing it.

  Raises:
    TooLarge: an integer result of 2**63 or more, or a float that overflows.
    NotALiteral: not two numbers, 0 to a negative power, or a complex result.
  """
  for number in (base, exponent):
    if not isinstance(number, (int, float)):
      raise NotALiteral(f"'**' takes numbers, not a {type(number).__name__}")
  if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
    # The result has about exponent * log2(|base|) bits: known without computing it.
    if exponent * math.log2(abs(base)) >= _INT_BITS:
      raise TooLarge(f"{_short(base)}**{_short(exponent)} is 2**63 or more; no config value needs that")
  try:
    result = base**exponent
  except ZeroDivisionError:
    raise NotALiteral("0 to a negative power") from None
  except OverflowError:
    raise TooLarge(f"{_short(base)}**{_short(exponent)} overflows a float") from None
  if isinstance(result, complex):
    raise NotALiteral("a complex result")
  if isinstance(result, float) and not math.isfinite(result):
    raise TooLarge(f"{_short(base)}**{_short(exponent)} is not finite")
  return result


def _short(number: int | float) -> str:
  text = repr(number)
  return text if len(text) <= 24 else text[:20] + "..."

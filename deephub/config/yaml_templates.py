"""`${...}` and `$(...)` templates of legacy YAML variants, evaluated as data, never as code.

A template's expression is parsed with Python's `ast` and walked here by hand;
it is never compiled, `eval`'d or rendered by Jinja. Allowed:

- a name (a top-level key of the config: `train`, `deephub_data_dir`), then
  `.key`, `[key]` and `[index]` lookups into the config's mappings and lists;
- int, float and string literals, `true` / `false` / `none`;
- `+ - * / // %` and unary `-` / `+` on numbers, `+` on two strings, and
  Jinja's `~`, which joins two scalars as text.

Everything else (calls, `|` filters, comparisons, attributes of anything but
a mapping) is refused. Results are bounded: strings to `MAX_STRING` chars,
numbers to finite values with integers below 2**63, and an expression to
`MAX_EXPRESSION` chars and `MAX_AST_DEPTH` levels.
"""

import ast
import io
import math
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_EXPRESSION = 512  # Characters inside one ${...}.
MAX_AST_DEPTH = 32
MAX_STRING = 65_536  # Characters of any string a template builds.
MAX_INT = 2**63
# Jinja's lower-case literals, read as Python's constants.
_LITERALS = {"true": True, "false": False, "none": None, "True": True, "False": False, "None": None}
_SCALARS = (str, int, float, bool, type(None))


class TemplateError(Exception):
  """A template cannot be evaluated; `refused` marks syntax outside the subset."""

  def __init__(self, reason: str, *, refused: bool = False):
    super().__init__(reason)
    self.refused = refused


class LimitError(TemplateError):
  """A value would break a bound (an integer of 2**63 or more, a string over `MAX_STRING`)."""


@dataclass(frozen=True)
class Template:
  """A string split into literal text and parsed expressions (`ast` nodes)."""

  parts: tuple[str | ast.expr, ...]

  @property
  def single(self) -> bool:
    """The whole string is one expression: its value keeps its type (a mapping, a number)."""
    return len(self.parts) == 1 and isinstance(self.parts[0], ast.expr)


def parse(text: str, start: str) -> Template:
  """Splits `text` at each `start`...end template (`${` / `}` or `$(` / `)`) and checks each one.

  Raises:
    TemplateError: an unclosed template, or an expression outside the subset.
  """
  if "{%" in text or "{#" in text:
    raise TemplateError("Jinja statements ({% %}) and comments ({# #}) are not supported", refused=True)
  end = "}" if start == "${" else ")"
  parts: list[str | ast.expr] = []
  i = 0
  while (begin := text.find(start, i)) >= 0:
    if begin > i:
      parts.append(text[i:begin])
    close = _closing(text, begin + len(start), end)
    parts.append(_expression(text[begin + len(start) : close]))
    i = close + 1
  if i < len(text):
    parts.append(text[i:])
  return Template(tuple(parts))


def _closing(text: str, i: int, end: str) -> int:
  """Index of the `end` that closes a template opened before `i`, skipping quotes and brackets."""
  depth, quote = 0, None
  while i < len(text):
    char = text[i]
    if quote:
      if char == "\\":
        i += 1
      elif char == quote:
        quote = None
    elif char in "'\"":
      quote = char
    elif char == end and depth == 0:
      return i
    elif char in "([{":
      depth += 1
    elif char in ")]}":
      depth -= 1
    i += 1
  raise TemplateError(f"a template is not closed with {end!r}", refused=True)


def _expression(source: str) -> ast.expr:
  """Parses one expression; `a ~ b` (Jinja's join) becomes `a @ b`, which nothing else may use."""
  if len(source) > MAX_EXPRESSION:
    raise TemplateError(f"an expression is over {MAX_EXPRESSION} characters", refused=True)
  try:
    tokens = list(tokenize.generate_tokens(io.StringIO(source.strip()).readline))
    if any(t.type == tokenize.OP and t.string == "@" for t in tokens):
      raise TemplateError("'@' is not supported", refused=True)
    joined = [t._replace(string="@") if t.type == tokenize.OP and t.string == "~" else t for t in tokens]
    tree = ast.parse(tokenize.untokenize(joined).strip(), mode="eval")
  except (SyntaxError, tokenize.TokenError, ValueError, RecursionError, MemoryError):
    raise TemplateError("an expression is not valid syntax", refused=True) from None
  _check(tree.body, depth=1)
  return tree.body


_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.MatMult)


def _check(node: ast.AST, depth: int) -> None:
  """Refuses any node outside the subset before anything is evaluated."""
  if depth > MAX_AST_DEPTH:
    raise TemplateError(f"an expression nests deeper than {MAX_AST_DEPTH} levels", refused=True)
  if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
    return
  if isinstance(node, ast.Name):
    return
  if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
    if node.attr.startswith("_"):  # `.__class__`, `.__globals__`: never a config key.
      raise TemplateError("a .key starting with '_' is not allowed", refused=True)
    return _check(node.value, depth + 1)
  if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
    _check(node.value, depth + 1)
    return _check(node.slice, depth + 1)
  if isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
    _check(node.left, depth + 1)
    return _check(node.right, depth + 1)
  if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
    return _check(node.operand, depth + 1)
  raise TemplateError(f"{_describe(node)} is not allowed", refused=True)


def _describe(node: ast.AST) -> str:
  names = {ast.Call: "a call", ast.BinOp: "that operator", ast.Compare: "a comparison"}
  return names.get(type(node), f"a {type(node).__name__} expression")


Lookup = Callable[[Any], Any]


def evaluate(template: Template, root: dict, *, resolve: Lookup) -> Any:
  """Evaluates `template` against the config `root`.

  Args:
    template: from `parse`.
    root: the config so far; names are its top-level keys.
    resolve: applied to every value a lookup reaches (resolves `$(...)` references).

  Returns:
    The value itself (the same object, which the caller copies) for a template
    that is one expression; else the parts joined as text, read back as an
    int or float when the text is one (as metayaml did).

  Raises:
    TemplateError: an unknown key, a type that an operator does not take, or a limit.
  """
  if template.single:
    value = _Evaluator(root, resolve).value(template.parts[0])
    return as_number(value) if isinstance(value, str) else value
  pieces = []
  for part in template.parts:
    value = part if isinstance(part, str) else _Evaluator(root, resolve).value(part)
    if not isinstance(value, _SCALARS):
      raise TemplateError(f"a {type(value).__name__} cannot be joined into text; use ${{...}} alone")
    pieces.append(str(value))
  return as_number("".join(pieces))


def as_number(text: str) -> Any:
  """metayaml's rule: rendered text that reads as an int or a float becomes one."""
  if len(text) > MAX_STRING:
    raise LimitError(f"a string is over {MAX_STRING} characters")
  for kind in (int, float):
    try:
      return kind(text)
    except (ValueError, TypeError):
      pass
  return text


class _Evaluator:
  def __init__(self, root: dict, resolve: Lookup):
    self._root = root
    self._resolve = resolve

  def value(self, node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
      return node.value
    if isinstance(node, ast.Name):
      if node.id in _LITERALS:
        return _LITERALS[node.id]
      return self._key(self._root, node.id, "the config")
    if isinstance(node, ast.Attribute):
      return self._key(self.value(node.value), node.attr, "it")
    if isinstance(node, ast.Subscript):
      return self._key(self.value(node.value), self.value(node.slice), "it")
    if isinstance(node, ast.UnaryOp):
      operand = self.value(node.operand)
      _numbers(operand)
      return _bounded(-operand if isinstance(node.op, ast.USub) else +operand)
    return self._binary(node)

  def _key(self, container: Any, key: Any, what: str) -> Any:
    """`container[key]` for a mapping or list of the config; nothing else is looked into."""
    if isinstance(container, dict):
      if isinstance(key, (str, int)) and key in container:
        return self._resolve(container[key])
      raise TemplateError(f"{_name(key)} is not a key of {what}")
    if isinstance(container, list):
      if isinstance(key, int) and not isinstance(key, bool) and -len(container) <= key < len(container):
        return self._resolve(container[key])
      raise TemplateError(f"{_name(key)} is not an index of a list of {len(container)}")
    kind = type(container).__name__
    raise TemplateError(f"cannot look up {_name(key)} in a {kind}, only in a mapping or list")

  def _binary(self, node: ast.BinOp) -> Any:
    left, right = self.value(node.left), self.value(node.right)
    if isinstance(node.op, ast.MatMult):  # `~`: both sides as text.
      if not isinstance(left, _SCALARS) or not isinstance(right, _SCALARS):
        raise TemplateError("'~' joins numbers and strings only")
      return _text(str(left) + str(right))
    if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
      return _text(left + right)
    _numbers(left, right)
    try:
      if isinstance(node.op, ast.Add):
        return _bounded(left + right)
      if isinstance(node.op, ast.Sub):
        return _bounded(left - right)
      if isinstance(node.op, ast.Mult):
        return _bounded(left * right)
      if isinstance(node.op, ast.Div):
        return _bounded(left / right)
      if isinstance(node.op, ast.FloorDiv):
        return _bounded(left // right)
      return _bounded(left % right)
    except ZeroDivisionError:
      raise TemplateError("division by zero") from None
    except OverflowError:
      raise LimitError("a number is too large") from None


def _numbers(*values: Any) -> None:
  for value in values:
    if not isinstance(value, (int, float)):
      raise TemplateError(f"arithmetic takes numbers, not a {type(value).__name__}")


def _bounded(number: int | float) -> int | float:
  if isinstance(number, float) and not math.isfinite(number):
    raise LimitError("arithmetic gave a number that is not finite")
  if isinstance(number, int) and abs(number) >= MAX_INT:
    raise LimitError("arithmetic gave an integer of 2**63 or more")
  return number


def _text(text: str) -> str:
  if len(text) > MAX_STRING:
    raise LimitError(f"a string is over {MAX_STRING} characters")
  return text


def _name(key: Any) -> str:
  """A key for a message: shown only when short and plain, so errors never echo file content."""
  text = str(key)
  if isinstance(key, (str, int)) and len(text) <= 40 and all(c.isalnum() or c in "_-." for c in text):
    return repr(key) if text.isascii() else "a key"
  return "a key"

"""A user's own class named in a config as 'package.module:Class' (feeders, exporters).

Only the module the user named is imported; nothing is unpickled or
evaluated. Every failure is one line naming the config key.
"""

import importlib
import inspect
from typing import Any

from deephub.errors import UserError


def import_class(type_name: str, *, key: str, what: str) -> type:
  """Returns the class named by `type_name`, 'package.module:Class'.

  Args:
    type_name: the config value.
    key: the config key holding it, for messages (`train.train_feeder.type`).
    what: what the class must be, for messages ('feeder', 'exporter').

  Raises:
    UserError: a malformed name, or no such module or class.
  """
  found, module_name, class_name = import_named(
    type_name, key=key, shape=f"name your own {what} class as 'package.module:Class'"
  )
  if not inspect.isclass(found):
    raise UserError(f"{key} is {type_name!r}: {module_name} has no class {class_name!r}; fix class_type")
  return found


def import_named(spec: str, *, key: str, shape: str) -> tuple[Any, str, str]:
  """Imports the module of 'package.module:name' and returns `(its name attribute or None, module, name)`.

  Only that module is imported; nothing is evaluated. Callers check what they got.

  Args:
    spec: the config value.
    key: the config key holding it, for messages.
    shape: what to do when `spec` is not 'module:name', for the message.

  Raises:
    UserError: a malformed spec, or no such module.
  """
  module_name, _, name = str(spec).partition(":")
  if not module_name or not name or ":" in name:
    raise UserError(f"{key} is {spec!r}; {shape}")
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as error:
    if error.name != module_name and not module_name.startswith(f"{error.name}."):
      raise  # The module exists but one of its own imports is missing: a real bug.
    fix = "put it on PYTHONPATH or fix the name"
    raise UserError(f"{key} is {spec!r}: no module {module_name!r}; {fix}") from None
  return getattr(module, name, None), module_name, name


def accepts(cls: type, name: str) -> bool:
  """Whether `cls(...)` takes a keyword argument `name` (or any keyword)."""
  try:
    parameters = inspect.signature(cls).parameters.values()
  except (TypeError, ValueError):  # A builtin without a signature.
    return False
  return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)

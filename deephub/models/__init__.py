"""Model lookup: `model.type` strings to Model instances."""

import importlib
import inspect
import os
import pkgutil
from collections.abc import Mapping, Sequence
from typing import Any

from deephub.errors import UserError, closest
from deephub.models.base import Model

_REGISTRY_PACKAGE = "deephub.models.registry"
# Keys of the `model` config section that configure the engine, not the model.
ENGINE_KEYS = ("type", "model_dir")


def registry_names() -> list[str]:
  """Lists 'file:Class' for every Model subclass in the registry."""
  package = importlib.import_module(_REGISTRY_PACKAGE)
  names = []
  for info in pkgutil.iter_modules([os.path.dirname(package.__file__)]):
    module = importlib.import_module(f"{_REGISTRY_PACKAGE}.{info.name}")
    for attr, value in vars(module).items():
      if inspect.isclass(value) and issubclass(value, Model) and value.__module__ == module.__name__:
        names.append(f"{info.name}:{attr}")
  return sorted(names)


def resolve_model_class(type_name: str) -> type[Model]:
  """Returns the class for 'file:Class' (registry) or 'package.module:Class'.

  Only the module the user named is imported; nothing is unpickled or
  evaluated.

  Raises:
    UserError: malformed name, or no such module or class.
  """
  module_name, _, class_name = type_name.partition(":")
  if not module_name or not class_name:
    raise UserError(
      f"model.type is {type_name!r}; use 'file:Class' from the registry "
      f"({', '.join(registry_names())}) or 'package.module:Class'"
    )
  full_module = module_name if "." in module_name else f"{_REGISTRY_PACKAGE}.{module_name}"
  try:
    module = importlib.import_module(full_module)
  except ModuleNotFoundError as error:
    if error.name not in (full_module, module_name) and not full_module.startswith(f"{error.name}."):
      raise  # The module exists but one of its own imports is missing: a real bug.
    raise UserError(
      f"model.type {type_name!r}: no module {full_module!r}; the registry holds {', '.join(registry_names())}"
    ) from None
  model_class = getattr(module, class_name, None)
  if not (inspect.isclass(model_class) and issubclass(model_class, Model)):
    raise UserError(
      f"model.type {type_name!r}: {full_module} has no Model class {class_name!r}; the "
      f"registry holds {', '.join(registry_names())}"
    )
  return model_class


def model_parameters(model_class: type[Model]) -> list[str]:
  """The `model.*` keys a class takes: the keyword-only parameters of its constructor."""
  parameters = inspect.signature(model_class.__init__).parameters
  return [name for name, p in parameters.items() if p.kind == p.KEYWORD_ONLY]


def build_model(
  model_config: Mapping[str, Any], *, feature_names: Sequence[str], label_names: Sequence[str]
) -> Model:
  """Instantiates `model.type` with every other `model.*` key as a keyword.

  Raises:
    UserError: unknown type, or params the class does not accept / lacks.
  """
  params = model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config)
  model_class = resolve_model_class(params["type"])
  kwargs = {key: value for key, value in params.items() if key not in ENGINE_KEYS}
  parameters = inspect.signature(model_class.__init__).parameters
  known = model_parameters(model_class)
  for key in kwargs:
    if key not in known:
      raise UserError(f"model.{key} is not a parameter of {params['type']}; closest: {closest(key, known)}")
  for name in known:
    if parameters[name].default is parameters[name].empty and name not in kwargs:
      raise UserError(f"model.{name} is required by {params['type']}; add it to the variant")
  return model_class(feature_names=feature_names, label_names=label_names, **kwargs)

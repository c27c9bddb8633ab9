"""A user's own feeder class: a feeder `type` of 'package.module:Class'.

The old framework's YAML named it with `module_path` + `class_type` (mapped
onto `type` by `deephub.config.yaml_spelling`). The class is called with the
feeder's `init_args` as keywords (plus `seed=` when its constructor takes
one), and the object must provide the `deephub.io.feeder.Feeder` interface:
the engine calls nothing else on it.
"""

from collections.abc import Mapping
from typing import Any

from deephub.errors import UserError
from deephub.io.feeder import Feeder
from deephub.user_classes import accepts, import_class

# What `Feeder` requires; the optional hooks are looked up by the engine.
_METHODS = ("dataset", "steps_per_epoch")
_ATTRIBUTES = ("batch_size", "feature_names", "label_names")
_INTERFACE = (
  "the feeder interface deephub.io.feeder.Feeder "
  "(batch_size, feature_names, label_names, dataset(), steps_per_epoch())"
)


def build_user_feeder(
  type_name: str, init_args: Mapping[str, Any], *, seed: int | None, where: str
) -> Feeder:
  """Imports and instantiates a user's feeder class, checking it provides `Feeder`.

  Args:
    type_name: 'package.module:Class'.
    init_args: the class's keyword arguments (the feeder's `init_args`).
    seed: the run's seed, passed as `seed=` when the constructor takes it.
    where: config path of the feeder, for messages.

  Raises:
    UserError: the class cannot be imported, refuses the arguments, or
      lacks part of the feeder interface.
  """
  cls = import_class(type_name, key=f"{where}.type", what="feeder")
  # Checked on the class before calling it, so that a config cannot call any
  # importable class (subprocess.Popen) with arguments of its choosing.
  missing = [name for name in _METHODS if not callable(getattr(cls, name, None))]
  if missing:
    lacks = ", ".join(missing)
    raise UserError(f"{where}.type {type_name!r} lacks {lacks}: a feeder class must provide {_INTERFACE}")
  args = dict(init_args)
  if seed is not None and "seed" not in args and accepts(cls, "seed"):
    args["seed"] = seed
  try:
    feeder = cls(**args)
  except UserError as error:
    raise UserError(f"{where}: {error}") from None
  except TypeError as error:
    raise UserError(f"{where}.init_args do not fit {type_name}: {error}; fix init_args") from None
  missing = [name for name in _ATTRIBUTES if not hasattr(feeder, name)]
  if missing or not isinstance(feeder, Feeder):
    raise UserError(
      f"{where}.type {type_name!r} gives objects without {', '.join(missing)}: a feeder class must provide "
      f"{_INTERFACE}"
    )
  return feeder

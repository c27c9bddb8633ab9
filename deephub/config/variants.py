"""Finding, loading and recording variant configs.

A variant name resolves to `<variants_dir>/<name>.py`, a file whose
`get_config()` returns a ConfigDict, else to the legacy `<name>.yaml` (see
`deephub.config.yaml_variants`); `name.py` / `name.yaml` picks one explicitly. The
default variants dir is the
repository's `configs/variants` (mapped to `deephub/configs/variants` by a
non-editable install).
"""

import importlib.util
import json
import os

import ml_collections
import yaml

from deephub.errors import UserError, closest

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # deephub/
# Searched in this order: a Python variant wins over a YAML one of the same name.
_EXTENSIONS = (".py", ".yaml")


def default_variants_dir() -> str:
  """`configs/variants` of the installed package, else of the source checkout."""
  for root in (os.path.join(_PACKAGE_DIR, "configs"), os.path.join(os.path.dirname(_PACKAGE_DIR), "configs")):
    path = os.path.join(root, "variants")
    if os.path.isdir(path):
      return path
  raise UserError("deephub's configs/variants folder is missing; reinstall deephub or pass --variants_dir")


def available_variants(variants_dir: str) -> list[str]:
  """Names of the variant files in `variants_dir`."""
  if not os.path.isdir(variants_dir):
    return []
  return sorted(
    {
      os.path.splitext(name)[0]
      for name in os.listdir(variants_dir)
      if name.endswith(_EXTENSIONS) and not name.startswith("_")
    }
  )


def find_variant(name: str, variants_dir: str | None = None) -> str:
  """Returns the path of variant `name`.

  Raises:
    UserError: no such variant; the message lists the closest names.
  """
  variants_dir = variants_dir or default_variants_dir()
  names = [name] if name.endswith(_EXTENSIONS) else [f"{name}{ext}" for ext in _EXTENSIONS]
  for candidate in names:
    path = os.path.join(variants_dir, candidate)
    if os.path.isfile(path):
      return path
  raise UserError(
    f"Cannot find variant with name {name!r} in {variants_dir}; available: "
    f"{closest(name, available_variants(variants_dir))}"
  )


def load_variant(name: str, variants_dir: str | None = None) -> ml_collections.ConfigDict:
  """Finds variant `name` and returns its locked config (see `load_variant_file`)."""
  return load_variant_file(find_variant(name, variants_dir))


def load_variant_file(path: str) -> ml_collections.ConfigDict:
  """Imports a `.py` variant and returns its locked `get_config()`, or maps a `.yaml` one.

  Each call runs the Python file's top level once; callers that need the
  config twice keep it (as `deephub.train.parse_flags` does).
  """
  if path.endswith(".yaml"):
    from deephub.config import yaml_variants  # Deferred: only YAML variants need the YAML reader.

    return yaml_variants.load_yaml_variant(path)
  module_name = f"deephub_variant_{os.path.splitext(os.path.basename(path))[0]}"
  spec = importlib.util.spec_from_file_location(module_name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.lock()
  return config


def flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  """Every dotted key path of the config, nested sections included."""
  keys = []
  for key, value in config.items():
    path = f"{prefix}{key}"
    keys.append(path)
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      keys.extend(
        flat_keys(
          value if isinstance(value, ml_collections.ConfigDict) else ml_collections.ConfigDict(value),
          f"{path}.",
        )
      )
  return keys


def check_key(config: ml_collections.ConfigDict, key: str) -> None:
  """Raises a UserError naming the closest keys when `key` is not in the config."""
  keys = flat_keys(config)
  if key not in keys:
    raise UserError(f"unknown config key {key!r}; closest: {closest(key, keys)}")


def write_resolved_config(config: ml_collections.ConfigDict, model_dir: str) -> None:
  """Writes the config as `config.json` and the legacy `experiment_params.yaml`."""
  import tensorflow as tf  # Deferred: config handling must not load TensorFlow.

  tf.io.gfile.makedirs(model_dir)
  as_dict = config.to_dict()
  with tf.io.gfile.GFile(os.path.join(model_dir, "config.json"), "w") as f:
    f.write(json.dumps(as_dict, indent=2, sort_keys=False) + "\n")
  with tf.io.gfile.GFile(os.path.join(model_dir, "experiment_params.yaml"), "w") as f:
    # safe_dump: the file holds plain data, never Python object tags.
    f.write(yaml.safe_dump(as_dict, sort_keys=False))

"""Legacy YAML variants: metayaml files mapped onto the same ConfigDict as Python variants.

A YAML variant holds `model` / `train` / `runtime` sections and may `extend` a
list of other YAML files (paths relative to the including file, globs
allowed); the `metayaml` package merges them recursively, later values
winning, and substitutes `${...}` references. `${deephub_data_dir}` names the
bundled data folder (`deephub/resources/blobs/data`).

Security: metayaml parses with PyYAML's unsafe loader (a `!!python/...` tag runs
code) and renders `${...}` with an unsandboxed Jinja2 (`${x.__globals__}`
reaches `os`). So before metayaml opens anything, `check_safe` walks the whole
extend chain itself with `yaml.safe_load`, refuses any file with a non-standard
tag, and allows in templates only names, constants, `.attr` / `[key]` lookups
and arithmetic.

Used by `deephub.variants` for `<variant>.yaml`, and as a config file for
`--config=<this file>:<variant.yaml>` (ml_collections passes the text after
the colon to `get_config`).
"""

import glob
import os
from collections.abc import Mapping
from typing import Any

import jinja2
import ml_collections
import yaml
from jinja2 import nodes

from deephub import defaults
from deephub.errors import UserError, closest
from deephub.resources import toy_data_dir

EXTEND_KEY = "extend"
DATA_DIR_KEY = "deephub_data_dir"
# metayaml's markers, compared as plain strings before any templating.
_MARKERS = ("${__del__}", "${__del_all__}", "${__extend__}", "${__inherit__}")
_BRACKETS = (("${", "}"), ("$(", ")"))
# Jinja2 expression nodes a template may hold: lookups and arithmetic only;
# calls, filters, tests and statements are refused.
_SAFE_NODES = (
  nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.List, nodes.Tuple,
  nodes.Getattr, nodes.Getitem, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod,
  nodes.Neg, nodes.Pos, nodes.Concat,
)  # fmt: skip
# Feeder sections whose keys are feature names, not config keys.
_FREE_FORM = ("features_map", "labels_map", "warm_start_var_name_map")


def check_safe(path: str, _seen: set[str] | None = None) -> list[str]:
  """Checks `path` and every file it extends, without running anything.

  Returns:
    The absolute paths checked, in the order they were reached.

  Raises:
    UserError: a file is missing, is not plain YAML (a `!!python/...` or other
      non-standard tag), extends through a template, or holds a template
      beyond lookups and arithmetic.
  """
  seen = set() if _seen is None else _seen
  path = os.path.abspath(path)
  if path in seen:
    return []
  seen.add(path)
  try:
    with open(path, encoding="utf-8") as f:
      data = yaml.safe_load(f) or {}
  except OSError as error:
    raise UserError(f"cannot read YAML variant file {path}: {error.strerror}") from None
  except yaml.YAMLError as error:
    problem = getattr(error, "problem", None) or str(error)
    raise UserError(
      f"{path} is refused: {' '.join(problem.split())}; variants may hold only plain YAML "
      "(no !!python tags), remove the tag"
    ) from None
  if not isinstance(data, dict):
    raise UserError(f"{path} holds a {type(data).__name__}; a YAML variant is a mapping of sections")
  _check_templates(data, path, where="")
  checked = [path]
  extends = data.get(EXTEND_KEY) or []
  for entry in [extends] if isinstance(extends, str) else extends:
    if not isinstance(entry, str) or any(start in entry for start, _ in _BRACKETS):
      raise UserError(f"{path}: extend entry {entry!r} must be a plain file path or glob, without ${{...}}")
    pattern = entry if os.path.isabs(entry) else os.path.join(os.path.dirname(path), entry)
    matches = sorted(glob.glob(pattern))
    if not matches:
      raise UserError(f"{path}: extend entry {entry!r} matches no file ({pattern}); fix the path")
    for match in matches:
      checked += check_safe(match, seen)
  return checked


def _check_templates(value: Any, path: str, where: str) -> None:
  if isinstance(value, dict):
    for key, item in value.items():
      _check_templates(key, path, where)
      if key == "${__inherit__}":  # metayaml renders its value as ${value}.
        _check_expression(f"${{{item}}}", path, f"{where}{key}")
      _check_templates(item, path, f"{where}{key}.")
  elif isinstance(value, list):
    for i, item in enumerate(value):
      _check_templates(item, path, f"{where}{i}.")
  elif isinstance(value, str) and value not in _MARKERS:
    _check_expression(value, path, where.rstrip("."))


def _check_expression(text: str, path: str, where: str) -> None:
  for start, end in _BRACKETS:
    if start not in text:
      continue
    environment = jinja2.Environment(variable_start_string=start, variable_end_string=end)
    try:
      tree = environment.parse(text)
    except jinja2.TemplateSyntaxError as error:
      raise UserError(f"{path}: {where} = {text!r} is not a valid template: {error.message}") from None
    for node in tree.find_all(nodes.Node):
      private = (isinstance(node, nodes.Getattr) and node.attr.startswith("_")) or (
        isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Const)
      )
      private |= isinstance(node, nodes.Const) and isinstance(node.value, str) and node.value.startswith("_")
      if private or not isinstance(node, _SAFE_NODES):
        raise UserError(
          f"{path}: {where} = {text!r} is refused: templates may only look up values "
          f"(${{section.key}}) and do arithmetic, not {type(node).__name__}"
        )


def read_definition(path: str) -> dict:
  """Returns the merged plain dict of a YAML variant after `check_safe`."""
  check_safe(path)
  import metayaml  # Deferred: only YAML variants need it.
  from metayaml.exception import MetaYamlException

  try:
    data = metayaml.read(os.path.abspath(path), defaults={DATA_DIR_KEY: os.path.dirname(toy_data_dir())})
  except MetaYamlException as error:
    raise UserError(f"{path}: {' '.join(str(error).split())}") from None
  data.pop(DATA_DIR_KEY, None)
  return data


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
  key is an error naming the closest ones, as for Python variants.

  Raises:
    UserError: an unknown section or key, or a value of the wrong type.
  """
  config = defaults.base_config()
  definition = dict(definition)
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
    if key not in section and not open_keys:
      raise UserError(f"{path}: unknown key {name!r}; closest: {closest(name, _names(section, where))}")
    if key in section and isinstance(section[key], ml_collections.ConfigDict) and isinstance(value, dict):
      child_open = name == "model" or key in _FREE_FORM or open_keys
      _merge(section[key], value, path=path, where=f"{name}.", open_keys=child_open)
      continue
    try:  # A new key's dict value becomes a ConfigDict too, which refuses dotted keys.
      section[key] = value
    except (TypeError, ValueError) as error:
      raise UserError(f"{path}: {name} = {value!r}: {' '.join(str(error).split())}") from None


def _names(section: ml_collections.ConfigDict, where: str) -> list[str]:
  return [f"{where}{key}" for key in section]


def load_yaml_variant(path: str) -> ml_collections.ConfigDict:
  """Reads, checks and maps the YAML variant at `path`; returns a locked ConfigDict."""
  return config_from_definition(read_definition(path), path=path)


def get_config(path: str) -> ml_collections.ConfigDict:
  """ml_collections config-file hook: `--config=<this file>:<variant.yaml>`."""
  return load_yaml_variant(path)

"""The tune file of `deep hpt`: reading, checking, and applying it to a variant config.

A tune file names the variant, the goal and metric, `max_trials` and a search
space of dotted config keys (see README "Hyperparameter search"). Everything
here is checked before the first trial, against the variant's own config, so
a typo or an impossible range costs one line and no training. The old layout
(`fixed_model_params` / `fixed_train_params`, keys without their section) is
read by prefixing those keys with `model.` / `train.`.

Nothing here imports Optuna or TensorFlow: `deep hpt status` and the checks
stay fast.
"""

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

import ml_collections
import yaml

from deephub.config import variants
from deephub.errors import UserError, closest

TYPES = ("REAL", "INTEGER", "CATEGORICAL")
SCALES = ("LINEAR", "LOG")
GOALS = ("MINIMIZE", "MAXIMIZE")
PRUNERS = ("median", "none")
# Every key a tune file may hold; anything else is a typo.
_TOP_KEYS = (
  "goal",
  "metric",
  "max_trials",
  "variant",
  "variants_dir",
  "params",
  "fixed_params",
  "fixed_model_params",
  "fixed_train_params",
  "pruner",
  "pruner_startup_trials",
  "pruner_warmup_steps",
  "seed",
  "study_name",
)
_PARAM_KEYS = ("type", "min", "max", "step", "scale", "choices", "constant")
# Optuna stores categorical choices as JSON: only these types survive.
_CHOICE_TYPES = (type(None), bool, int, float, str)
# Set by the study for each trial; a tune file may not move it.
_STUDY_OWNED_KEYS = ("model.model_dir",)


@dataclasses.dataclass(frozen=True)
class Param:
  """One searched (or constant) config key."""

  key: str
  type: str
  low: float | int | None = None
  high: float | int | None = None
  step: float | int | None = None
  log: bool = False
  choices: tuple[Any, ...] = ()
  constant: Any = None
  is_constant: bool = False


@dataclasses.dataclass(frozen=True)
class TuneSpec:
  """A checked tune file."""

  path: str
  goal: str
  metric: str
  max_trials: int
  variant: str
  variants_dir: str | None
  params: tuple[Param, ...]
  fixed_params: dict[str, Any]
  pruner: str
  pruner_startup_trials: int
  pruner_warmup_steps: int
  seed: int | None
  study_name: str

  @property
  def maximize(self) -> bool:
    return self.goal == "MAXIMIZE"


def load(path: str, extra_fixed: Mapping[str, Any] | None = None) -> TuneSpec:
  """Reads and checks the tune file at `path`.

  Args:
    path: the YAML tune file.
    extra_fixed: more fixed overrides (`deep hpt run -p KEY VALUE`), applied
      after the file's.

  Returns:
    The checked spec (keys not yet checked against the variant: see `check_against`).

  Raises:
    UserError: unreadable file, unknown key, bad type or range.
  """
  try:
    with open(path, encoding="utf-8") as f:
      raw = yaml.safe_load(f)
  except OSError as error:
    raise UserError(f"cannot read tune file {path}: {error.strerror}") from None
  except yaml.YAMLError as error:
    reason = " ".join(str(error).split())
    raise UserError(f"{path} is not valid YAML: {reason}") from None
  if not isinstance(raw, dict):
    raise UserError(f"{path} must be a mapping with goal, metric, max_trials, variant and params")
  if "objective" in raw:
    raise UserError(
      f"{path}: 'objective' (MODULE_CALL) is gone; name the variant to train with 'variant: NAME'"
    )
  for key in raw:
    if key not in _TOP_KEYS:
      raise UserError(f"{path}: unknown key {key!r}; closest: {closest(str(key), _TOP_KEYS)}")
  for key in ("goal", "metric", "max_trials", "variant", "params"):
    if raw.get(key) is None:
      raise UserError(f"{path}: {key!r} is missing; see README 'Hyperparameter search' for the format")

  goal = str(raw["goal"]).upper()
  if goal not in GOALS:
    raise UserError(f"{path}: goal is {raw['goal']!r}; use MINIMIZE or MAXIMIZE")
  max_trials = _positive_int(path, "max_trials", raw["max_trials"])
  pruner = str(raw.get("pruner", "median"))
  if pruner not in PRUNERS:
    raise UserError(f"{path}: pruner is {pruner!r}; use one of {', '.join(PRUNERS)}")
  params = raw["params"]
  if not isinstance(params, dict) or not params:
    raise UserError(f"{path}: params must map dotted config keys to search ranges, e.g. model.learning_rate")
  fixed = _fixed_params(path, raw)
  fixed.update(extra_fixed or {})
  for key in [*params, *fixed]:
    if key in _STUDY_OWNED_KEYS:
      raise UserError(f"{path}: {key} is set per trial to <study-dir>/trial-N; remove it (use --study-dir)")
  seed = raw.get("seed")
  if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
    raise UserError(f"{path}: seed is {seed!r}; use an integer or leave it out")
  return TuneSpec(
    path=path,
    goal=goal,
    metric=str(raw["metric"]),
    max_trials=max_trials,
    variant=str(raw["variant"]),
    variants_dir=_variants_dir(path, raw.get("variants_dir")),
    params=tuple(_param(path, str(key), value) for key, value in params.items()),
    fixed_params=fixed,
    pruner=pruner,
    pruner_startup_trials=_count(path, "pruner_startup_trials", raw.get("pruner_startup_trials", 5)),
    pruner_warmup_steps=_count(path, "pruner_warmup_steps", raw.get("pruner_warmup_steps", 0)),
    seed=seed,
    study_name=str(raw.get("study_name") or os.path.splitext(os.path.basename(path))[0]),
  )


def _variants_dir(path: str, value: Any) -> str | None:
  """A relative variants_dir is relative to the tune file, as metayaml's extend paths are."""
  if value is None:
    return None
  return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), str(value)))


def _fixed_params(path: str, raw: dict) -> dict[str, Any]:
  """`fixed_params` plus the old `fixed_model_params` / `fixed_train_params`, as dotted keys."""
  fixed = {}
  for section, prefix in (
    ("fixed_model_params", "model."),
    ("fixed_train_params", "train."),
    ("fixed_params", ""),
  ):
    values = raw.get(section) or {}
    if not isinstance(values, dict):
      raise UserError(f"{path}: {section} must map config keys to values")
    fixed.update({f"{prefix}{key}": value for key, value in values.items()})
  return fixed


def _positive_int(path: str, key: str, value: Any) -> int:
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise UserError(f"{path}: {key} is {value!r}; set it to an integer of 1 or more")
  return value


def _count(path: str, key: str, value: Any) -> int:
  if not isinstance(value, int) or isinstance(value, bool) or value < 0:
    raise UserError(f"{path}: {key} is {value!r}; set it to an integer of 0 or more")
  return value


def _number(where: str, name: str, value: Any, integer: bool) -> float | int:
  kinds = (int,) if integer else (int, float)
  if not isinstance(value, kinds) or isinstance(value, bool) or not math.isfinite(value):
    raise UserError(f"{where}: {name} is {value!r}; expected {'an integer' if integer else 'a number'}")
  return value


def _param(path: str, key: str, spec: Any) -> Param:
  """Checks one `params` entry and returns it as a `Param`."""
  where = f"{path}: params.{key}"
  if not isinstance(spec, dict):
    raise UserError(f"{where} must be a mapping such as {{type: REAL, min: 0.001, max: 0.1}}")
  for field in spec:
    if field not in _PARAM_KEYS:
      raise UserError(f"{where}: unknown field {field!r}; closest: {closest(str(field), _PARAM_KEYS)}")
  kind = str(spec.get("type", "")).upper()
  if kind not in TYPES:
    raise UserError(f"{where}: type is {spec.get('type')!r}; use REAL, INTEGER or CATEGORICAL")
  if "constant" in spec:
    others = sorted(set(spec) - {"type", "constant"})
    if others:
      raise UserError(f"{where}: constant fixes the value; remove {', '.join(others)}")
    value = spec["constant"]
    if kind != "CATEGORICAL":
      value = _number(where, "constant", value, integer=kind == "INTEGER")
    return Param(key=key, type=kind, constant=value, is_constant=True)
  if kind == "CATEGORICAL":
    choices = spec.get("choices")
    others = sorted(set(spec) - {"type", "choices"})
    if others:
      raise UserError(f"{where}: CATEGORICAL takes only choices; remove {', '.join(others)}")
    if not isinstance(choices, list) or not choices:
      raise UserError(f"{where}: choices must be a non-empty list")
    for choice in choices:
      if not isinstance(choice, _CHOICE_TYPES):
        raise UserError(f"{where}: choice {choice!r} is not a number, string, boolean or null")
    return Param(key=key, type=kind, choices=tuple(choices))
  if "choices" in spec:
    raise UserError(f"{where}: choices belong to type CATEGORICAL; {kind} takes min and max")
  integer = kind == "INTEGER"
  for bound in ("min", "max"):
    if bound not in spec:
      raise UserError(f"{where}: {bound} is missing ({kind} needs min and max, or constant)")
  low = _number(where, "min", spec["min"], integer)
  high = _number(where, "max", spec["max"], integer)
  if low > high:
    raise UserError(f"{where}: min {low} is above max {high}; swap them")
  scale = str(spec.get("scale", "LINEAR")).upper()
  if scale not in SCALES:
    raise UserError(f"{where}: scale is {spec['scale']!r}; use LINEAR or LOG")
  log = scale == "LOG"
  if log and low <= 0:
    raise UserError(f"{where}: scale LOG needs min above 0 (min is {low})")
  step = spec.get("step")
  if step is not None:
    step = _number(where, "step", step, integer)
    if step <= 0:
      raise UserError(f"{where}: step is {step}; set it above 0")
    if log:
      raise UserError(f"{where}: step and scale LOG cannot be combined; remove one")
  return Param(key=key, type=kind, low=low, high=high, step=step, log=log)


def get_value(config: ml_collections.ConfigDict, key: str) -> Any:
  """The value at dotted `key` (checked: an unknown key names the closest ones)."""
  variants.check_key(config, key)
  value = config
  for part in key.split("."):
    value = value[part]
  return value


def set_value(config: ml_collections.ConfigDict, key: str, value: Any, *, where: str) -> None:
  """Sets dotted `key` of the locked config to `value`, with the usual typo suggestions.

  Raises:
    UserError: unknown key (naming the closest ones) or a value the field's type refuses.
  """
  try:
    variants.check_key(config, key)
  except UserError as error:
    raise UserError(f"{where}: {error}") from None
  *parents, leaf = key.split(".")
  section = config
  for part in parents:
    section = section[part]
  if isinstance(section[leaf], list) and isinstance(value, tuple):
    value = list(value)
  try:
    section[leaf] = value
  except (TypeError, ValueError) as error:
    reason = " ".join(str(error).split())
    raise UserError(f"{where}: {key} = {value!r} does not fit the field ({reason})") from None


def check_against(spec: TuneSpec, config: ml_collections.ConfigDict) -> None:
  """Checks every key and every value a trial could set against the variant's config.

  Sets the fixed values, then each param's bounds, choices or constant, on
  `config` (a throwaway copy: the caller loads the variant anew per trial).

  Raises:
    UserError: a key the variant lacks, or a value its field's type refuses.
  """
  for key, value in spec.fixed_params.items():
    set_value(config, key, value, where=f"{spec.path}: fixed params")
  for param in spec.params:
    where = f"{spec.path}: params.{param.key}"
    if param.is_constant:
      values = [param.constant]
    elif param.type == "CATEGORICAL":
      values = list(param.choices)
    else:
      values = [param.low, param.high]
    for value in values:
      set_value(config, param.key, value, where=where)
  if spec.pruner != "none" and config.train.validation_steps is None:
    raise UserError(
      f"{spec.path}: pruner {spec.pruner!r} compares trials at their evaluations, but "
      f"{spec.variant} evaluates at no fixed steps (train.validation_steps is None); set "
      "train.validation_steps in fixed_params, or pruner: none"
    )


def trial_config(spec: TuneSpec, values: Mapping[str, Any], model_dir: str) -> ml_collections.ConfigDict:
  """The variant's config with the fixed params, then the trial's `values`, and `model_dir`."""
  config = variants.load_variant(spec.variant, spec.variants_dir)
  for key, value in spec.fixed_params.items():
    set_value(config, key, value, where=f"{spec.path}: fixed params")
  for key, value in values.items():
    set_value(config, key, value, where=f"{spec.path}: params.{key}")
  config.model.model_dir = model_dir
  return config

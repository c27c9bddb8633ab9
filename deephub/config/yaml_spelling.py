"""The old framework's later YAML spelling, mapped onto deephub's config keys.

Its last releases named every class with `module_path` + `class_type`, with
the constructor's arguments under `init_args` or directly beside those keys.
`normalize` rewrites a merged YAML definition (after `extend:` and `$(...)`
were resolved) into deephub's spelling, so the rest of the loader and the
engine see one form:

- Feeders (`train.train_feeder`, `eval_feeder`, `predict_feeder`):
  `module_path: deephub.models.feeders` (or `.tfrecords`) with `class_type:
  TFRecordExamplesFeeder` becomes `type: TFRecordExamplesFeeder`, its
  arguments the feeder's own keys. Any other module_path is a user's class:
  `type: 'module_path:class_type'`, every argument under `init_args`
  (`deephub.io.user_feeder` checks it provides the Feeder interface); a
  `features_map` / `labels_map` among them is also copied to the feeder's own
  keys, which exports read.
- Exporters (`train.exporters.<key>`): `module_path: tensorflow.estimator`
  (or `deephub.trainer.exporters`) with `class_type: BestExporter`,
  `FinalExporter`, `LatestExporter` or `BestCheckpointCopier` fills
  `train.exporters.best` / `final` / `latest` / `best_checkpoint_copier`
  (one of each). Any other module_path is a user's class, put under
  `train.exporters.custom.<key>` (`deephub.engine.exporter`).
- A top-level `predict: {predict_feeder: ...}` becomes `train.predict_feeder`.

`features_map` entries' `class_type` is read where features are parsed
(`deephub.io.features.feature_type`).
"""

from collections.abc import Mapping
from typing import Any

from deephub.errors import UserError

CLASS_KEYS = ("module_path", "class_type", "init_args")
_FEEDERS = ("train_feeder", "eval_feeder", "predict_feeder")
# Module paths of the old framework's own feeders; their classes are deephub's.
OWN_FEEDER_MODULES = ("deephub.models.feeders", "deephub.models.feeders.tfrecords")
# Module paths whose exporter classes deephub runs itself.
OWN_EXPORTER_MODULES = (
  "tensorflow.estimator",
  "tf.estimator",
  "deephub.trainer.exporters",
  "deephub.engine.exporters",
)
# class_type -> the train.exporters section it fills.
EXPORTER_SECTIONS = {
  "BestExporter": "best",
  "FinalExporter": "final",
  "LatestExporter": "latest",
  "BestCheckpointCopier": "best_checkpoint_copier",
}
# Accepted and dropped: serving always parses serialized tf.Examples with the
# train feeder's features_map; compare_fn is replaced by the metric's direction.
_DROPPED = ("serving_feeder", "serving_input_receiver_fn", "compare_fn")
# Keys each exporter class takes, beside name and the dropped ones.
_EXPORTER_KEYS = {
  "BestExporter": ("exports_to_keep", "score_metric", "metric", "higher_is_better"),
  "FinalExporter": (),
  "LatestExporter": ("exports_to_keep",),
  "BestCheckpointCopier": ("checkpoints_to_keep", "score_metric", "metric", "higher_is_better"),
}
# The old classes' default names; Final/Latest had none, so the mapping key is used.
_DEFAULT_NAMES = {"BestExporter": "best_exporter", "BestCheckpointCopier": "best_checkpoints"}
_DEFAULT_KEEP = 5  # exports_to_keep / checkpoints_to_keep of the old classes.


def is_class_spelling(section: Any) -> bool:
  """Whether a config mapping names its class with `module_path` / `class_type`."""
  return isinstance(section, Mapping) and ("class_type" in section or "module_path" in section)


def normalize(definition: Mapping[str, Any], *, path: str) -> dict:
  """Returns `definition` with feeders, exporters and `predict:` in deephub's spelling.

  Args:
    definition: a merged YAML variant (plain dicts and lists).
    path: the variant file, for messages.

  Raises:
    UserError: a class is named incompletely, an exporter class is unknown
      or given twice, or a key is set in two places.
  """
  definition = dict(definition)
  predict = definition.pop("predict", None)
  train = definition.get("train")
  if predict is not None:
    train = dict(train) if isinstance(train, Mapping) else {}
    _predict_section(predict, train, path=path)
  if isinstance(train, Mapping):
    train = dict(train)
    for key in _FEEDERS:
      if is_class_spelling(train.get(key)):
        train[key] = feeder(train[key], where=f"train.{key}", path=path)
    if isinstance(train.get("exporters"), Mapping):
      train["exporters"] = exporters(train["exporters"], path=path)
    definition["train"] = train
  return definition


def _predict_section(predict: Any, train: dict, *, path: str) -> None:
  if not isinstance(predict, Mapping) or set(predict) - {"predict_feeder"}:
    extra = sorted(set(predict) - {"predict_feeder"}) if isinstance(predict, Mapping) else []
    raise UserError(
      f"{path}: the predict section may hold only predict_feeder (it has {extra or type(predict).__name__}); "
      "move other keys under train"
    )
  if "predict_feeder" in predict:
    if "predict_feeder" in train:
      raise UserError(f"{path}: predict.predict_feeder and train.predict_feeder are both set; keep one")
    train["predict_feeder"] = predict["predict_feeder"]


def _class_parts(section: Mapping[str, Any], *, where: str, path: str) -> tuple[str, str, dict, dict]:
  """(module_path, class_type, init_args, the other keys) of a class-spelled mapping."""
  section = dict(section)
  module_path = section.pop("module_path", "") or ""
  class_type = section.pop("class_type", None)
  init_args = section.pop("init_args", None)
  if not isinstance(class_type, str) or not class_type:
    raise UserError(f"{path}: {where} sets module_path without class_type; name the class in class_type")
  if not isinstance(module_path, str):
    raise UserError(f"{path}: {where}.module_path must be a module name such as deephub.models.feeders")
  if "type" in section:
    raise UserError(
      f"{path}: {where} sets type and class_type (perhaps in different extend files); keep one of them, "
      "e.g. remove type with `type: ${__del__}`"
    )
  if init_args is None:
    init_args = {}
  if not isinstance(init_args, Mapping):
    raise UserError(f"{path}: {where}.init_args must be a mapping of the class's arguments")
  both = sorted(key for key in init_args if key in section and section[key] != init_args[key])
  if both:
    raise UserError(f"{path}: {where} sets {both[0]} both in init_args and beside it, differently; keep one")
  return module_path, class_type, dict(init_args), section


def feeder(section: Mapping[str, Any], *, where: str, path: str) -> dict:
  """A class-spelled feeder in deephub's spelling (see the module docstring)."""
  module_path, class_type, init_args, rest = _class_parts(section, where=where, path=path)
  if not module_path or module_path in OWN_FEEDER_MODULES:
    # deephub's own feeder: the registry checks class_type when the feeder is built.
    return {**rest, **init_args, "type": class_type}
  args = {**rest, **init_args}
  # Exports and the evaluate/export/predict modes read the feature and label
  # specs from the feeder config: a user class's own maps are copied there too.
  maps = {key: args[key] for key in ("features_map", "labels_map") if isinstance(args.get(key), Mapping)}
  return {"type": f"{module_path}:{class_type}", "init_args": args, **maps}


def exporters(section: Mapping[str, Any], *, path: str) -> dict:
  """`train.exporters` with class-spelled entries moved to deephub's sections (see the module docstring)."""
  result = {key: value for key, value in section.items() if not is_class_spelling(value)}
  filled: dict[str, str] = {}  # deephub section -> the key that filled it.
  for key, entry in section.items():
    if not is_class_spelling(entry):
      continue
    where = f"train.exporters.{key}"
    module_path, class_type, init_args, rest = _class_parts(entry, where=where, path=path)
    args = {**rest, **init_args}
    if module_path and module_path not in OWN_EXPORTER_MODULES:
      custom = dict(result.get("custom") or {})
      custom[str(key)] = {"type": f"{module_path}:{class_type}", **args}
      result["custom"] = custom
      continue
    if class_type not in EXPORTER_SECTIONS:
      raise UserError(
        f"{path}: {where}.class_type is {class_type!r}; use one of {', '.join(sorted(EXPORTER_SECTIONS))} "
        "(module_path tensorflow.estimator), or module_path naming your own exporter's module"
      )
    target = EXPORTER_SECTIONS[class_type]
    if target in filled or (target in section and not is_class_spelling(section[target])):
      other = filled.get(target, f"train.exporters.{target}")
      raise UserError(
        f"{path}: {where} and {other} both configure the {class_type}; deephub runs one of each"
      )
    filled[target] = where
    result[target] = _exporter_section(class_type, args, key=str(key), where=where, path=path)
  return result


def _exporter_section(class_type: str, args: dict, *, key: str, where: str, path: str) -> dict:
  """An old exporter's arguments as the keys of deephub's `train.exporters.<section>`."""
  allowed = ("name", *_DROPPED, *_EXPORTER_KEYS[class_type])
  unknown = sorted(str(name) for name in args if name not in allowed)
  if unknown:
    raise UserError(f"{path}: {where}: {class_type} takes no {unknown[0]!r}; it takes {', '.join(allowed)}")
  name = args.get("name") or _DEFAULT_NAMES.get(class_type, key)
  section: dict[str, Any] = {"name": name}
  if "score_metric" in args and "metric" in args and args["score_metric"] != args["metric"]:
    raise UserError(f"{path}: {where} sets score_metric and metric differently; keep score_metric")
  if class_type in ("BestExporter", "BestCheckpointCopier"):
    metric = args.get("score_metric", args.get("metric", "loss"))
    section["metric"] = metric
    # A loss is lower-is-better, any other metric higher-is-better, unless set.
    section["higher_is_better"] = args.get("higher_is_better", "loss" not in str(metric).lower())
  if "exports_to_keep" in _EXPORTER_KEYS[class_type]:
    section["exports_to_keep"] = args.get("exports_to_keep", _DEFAULT_KEEP)
  if class_type == "BestCheckpointCopier":
    section["checkpoints_to_keep"] = args.get("checkpoints_to_keep", _DEFAULT_KEEP)
  return section


def override_key(config: Any, key: str) -> str:
  """A `-p` key in the later spelling, as deephub's config names it.

  `train.<feeder>.init_args.<key>` of deephub's own feeder (whose arguments
  were hoisted to the feeder's keys) is `train.<feeder>.<key>`; every other
  key is returned unchanged. Exporters are overridden by deephub's keys
  (`train.exporters.best.exports_to_keep`).
  """
  parts = key.split(".")
  if len(parts) >= 4 and parts[0] == "train" and parts[1] in _FEEDERS and parts[2] == "init_args":
    if ":" not in str(config.train[parts[1]].type):
      return ".".join([*parts[:2], *parts[3:]])
  return key

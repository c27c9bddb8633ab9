"""The old framework's later YAML spelling: module_path + class_type feeders and exporters, predict:, $(...).

Unit tests map definitions table by table; the end-to-end tests train the
fixtures in tests/fixtures/later_yaml through the real `deep` command.
"""

import json
import os

import pytest
import tensorflow as tf

from deephub.config import overrides, yaml_spelling, yaml_variants
from deephub.engine.exporters import Exporters
from deephub.errors import UserError
from deephub.io import make_feeder
from deephub.models import build_model
from deephub.resources import toy_data_dir
from tests.cli_run import run_deep
from tests.conftest import REPO, read_scalars

FIXTURES = os.path.join(REPO, "tests", "fixtures", "later_yaml", "variants")
USER = "tests.fixtures.later_yaml.user_classes"
NUMBER = {"class_type": "FixedLenFeature", "shape": [1], "dtype": "int64"}


def load(tmp_path, text, name="v.yaml"):
  path = tmp_path / name
  path.write_text(text)
  return yaml_variants.load_yaml_variant(str(path))


@pytest.mark.parametrize(
  "section, expected",
  [
    (
      {"module_path": "deephub.models.feeders", "class_type": "TFRecordExamplesFeeder",
       "init_args": {"batch_size": 3, "file_patterns": ["a"]}},
      {"type": "TFRecordExamplesFeeder", "batch_size": 3, "file_patterns": ["a"]},
    ),
    (
      {"module_path": "deephub.models.feeders.tfrecords", "class_type": "TFRecordExamplesFeeder",
       "batch_size": 3, "init_args": {"shuffle": True}},
      {"type": "TFRecordExamplesFeeder", "batch_size": 3, "shuffle": True},
    ),
    (
      {"class_type": "ParquetExamplesFeeder", "batch_size": 3},
      {"type": "ParquetExamplesFeeder", "batch_size": 3},
    ),
    (
      {"module_path": "my.feeders", "class_type": "Mine", "rows": 5, "init_args": {"path": "x"}},
      {"type": "my.feeders:Mine", "init_args": {"rows": 5, "path": "x"}},
    ),
    (  # A user class's maps are also the feeder's own, which exports read.
      {"module_path": "my.feeders", "class_type": "Mine", "init_args": {"features_map": {"x": {}}}},
      {"type": "my.feeders:Mine", "init_args": {"features_map": {"x": {}}}, "features_map": {"x": {}}},
    ),
  ],
)  # fmt: skip
def test_feeder_spelling(section, expected):
  assert yaml_spelling.feeder(section, where="train.train_feeder", path="v.yaml") == expected


@pytest.mark.parametrize(
  "section, message",
  [
    ({"module_path": "deephub.models.feeders"}, "train.train_feeder sets module_path without class_type"),
    (
      {"class_type": "TFRecordExamplesFeeder", "type": "X"},
      r"sets type and class_type \(perhaps in different extend files\); keep one",
    ),
    ({"class_type": "X", "init_args": [1]}, r"init_args must be a mapping"),
    (
      {"class_type": "X", "batch_size": 1, "init_args": {"batch_size": 2}},
      "sets batch_size both in init_args",
    ),
  ],
)
def test_feeder_spelling_errors(section, message):
  with pytest.raises(UserError, match=f"^v.yaml: .*{message}"):
    yaml_spelling.feeder(section, where="train.train_feeder", path="v.yaml")


TF = "tensorflow.estimator"


@pytest.mark.parametrize(
  "entries, expected",
  [
    (  # TF's defaults: BestExporter 'best_exporter' on the loss, 5 kept.
      {"b": {"module_path": TF, "class_type": "BestExporter"}},
      {"best": {"name": "best_exporter", "metric": "loss", "higher_is_better": False, "exports_to_keep": 5}},
    ),
    (  # Any metric but a loss improves upwards; compare_fn and serving inputs are accepted.
      {"b": {"module_path": "deephub.trainer.exporters", "class_type": "BestCheckpointCopier",
             "init_args": {"score_metric": "accuracy", "compare_fn": "larger", "serving_feeder": {"a": 1}}}},
      {"best_checkpoint_copier": {"name": "best_checkpoints", "metric": "accuracy", "higher_is_better": True,
                                  "checkpoints_to_keep": 5}},
    ),
    (  # higher_is_better given wins.
      {"b": {"module_path": TF, "class_type": "BestExporter", "score_metric": "auc_loss",
             "higher_is_better": True, "exports_to_keep": 1, "name": "n"}},
      {"best": {"name": "n", "metric": "auc_loss", "higher_is_better": True, "exports_to_keep": 1}},
    ),
    (  # Final and Latest had no default name: the mapping key.
      {"fin": {"module_path": TF, "class_type": "FinalExporter", "serving_input_receiver_fn": "x"},
       "lat": {"module_path": TF, "class_type": "LatestExporter", "init_args": {"exports_to_keep": 3}}},
      {"final": {"name": "fin"}, "latest": {"name": "lat", "exports_to_keep": 3}},
    ),
    (  # A user's class goes under custom with its arguments; deephub's own spelling stays.
      {"mine": {"module_path": "my.exporters", "class_type": "Upload", "init_args": {"bucket": "b"}},
       "final": {"name": "f"}},
      {"custom": {"mine": {"type": "my.exporters:Upload", "bucket": "b"}}, "final": {"name": "f"}},
    ),
  ],
)  # fmt: skip
def test_exporter_spelling(entries, expected):
  assert yaml_spelling.exporters(entries, path="v.yaml") == expected


@pytest.mark.parametrize(
  "entries, message",
  [
    ({"x": {"module_path": TF, "class_type": "BestExportr"}},
     r"train.exporters.x.class_type is 'BestExportr'; use one of BestCheckpointCopier, BestExporter, "
     r"FinalExporter, LatestExporter \(module_path tensorflow.estimator\), or module_path naming your own"),
    ({"a": {"module_path": TF, "class_type": "BestExporter"}, "b": {"class_type": "BestExporter"}},
     r"train.exporters.b and train.exporters.a both configure the BestExporter; deephub runs one of each"),
    ({"a": {"module_path": TF, "class_type": "BestExporter"}, "best": {"name": "x"}},
     r"train.exporters.a and train.exporters.best both configure the BestExporter"),
    ({"a": {"module_path": TF, "class_type": "FinalExporter", "exports_to_keep": 2}},
     r"train.exporters.a: FinalExporter takes no 'exports_to_keep'; it takes name, serving_feeder"),
  ],
)  # fmt: skip
def test_exporter_spelling_errors(entries, message):
  with pytest.raises(UserError, match=f"^v.yaml: {message}"):
    yaml_spelling.exporters(entries, path="v.yaml")


def test_predict_section_is_train_predict_feeder(tmp_path):
  config = load(
    tmp_path,
    "train:\n  eval_feeder: {batch_size: 7}\npredict:\n  predict_feeder: $(train.eval_feeder)\n",
  )
  assert config.train.predict_feeder.batch_size == 7
  with pytest.raises(
    UserError, match=r"v.yaml: the predict section may hold only predict_feeder \(it has \['x'\]"
  ):
    load(tmp_path, "predict:\n  x: 1\n")
  with pytest.raises(UserError, match="predict.predict_feeder and train.predict_feeder are both set"):
    load(tmp_path, "train:\n  predict_feeder: {batch_size: 1}\npredict:\n  predict_feeder: {batch_size: 2}\n")


def test_dotted_references_resolve_and_anything_else_stays_refused(tmp_path):
  text = (
    "train:\n  train_feeder: {batch_size: 4, features_map: {x: {class_type: VarLenFeature, dtype: int64}}}\n"
    "  exporters:\n"
    "    best_exporter: {class_type: BestExporter, serving_input_receiver_fn: $(train.train_feeder)}\n"
    "    copier: {class_type: BestCheckpointCopier,\n"
    "             serving_feeder: $(train.exporters.best_exporter.serving_input_receiver_fn)}\n"
  )
  config = load(tmp_path, text)
  assert config.train.exporters.best.name == "best_exporter"
  assert config.train.exporters.best_checkpoint_copier.name == "best_checkpoints"
  # class_type survives the loader into the feature entry, where the parser reads it.
  assert config.train.train_feeder.features_map.x.class_type == "VarLenFeature"
  for refused in ("$(len(train))", "$(train.__class__)", "$(train.train_feeder if 1 else 2)"):
    with pytest.raises(UserError, match="is refused"):
      load(tmp_path, f"train:\n  exporters:\n    best: {{name: '{refused}'}}\n")


def test_user_feeder_class_is_checked_against_the_feeder_interface(tmp_path):
  base = {"type": f"{USER}:NotAFeeder", "init_args": {"rows": 1}}
  lacks = (
    r"^train.train_feeder.type '.*:NotAFeeder' lacks dataset, steps_per_epoch: a feeder class must provide"
  )
  with pytest.raises(UserError, match=lacks + " the feeder interface deephub.io.feeder.Feeder"):
    make_feeder(base, where="train.train_feeder")
  with pytest.raises(
    UserError, match=r"^train.train_feeder.type is 'tests.nowhere:X': no module 'tests.nowhere'"
  ):
    make_feeder({"type": "tests.nowhere:X"}, where="train.train_feeder")
  with pytest.raises(UserError, match=r"^train.train_feeder.init_args do not fit .*MarkedFeeder: .*marker"):
    make_feeder({"type": f"{USER}:MarkedFeeder", "init_args": {"batch_size": 1}}, where="train.train_feeder")
  with pytest.raises(
    UserError, match=r"^f.init_args is set but type 'TFRecordExamplesFeeder' is deephub's own"
  ):
    make_feeder({"type": "TFRecordExamplesFeeder", "init_args": {"a": 1}}, where="f")
  marker = tmp_path / "marker.txt"
  number = {"type": "FixedLenFeature", "shape": [1], "dtype": "int64"}
  init_args = {
    "marker": str(marker), "batch_size": 5, "file_patterns": [os.path.join(toy_data_dir(), "train-*")],
    "features_map": {"number": number}, "labels_map": {"number": number},
  }  # fmt: skip
  feeder = make_feeder({"type": f"{USER}:MarkedFeeder", "init_args": init_args}, seed=7, where="f")
  assert feeder.steps_per_epoch() == 2 and marker.read_text() == "built with seed 7\n"


def test_user_exporter_class_errors(toy_config):
  model = build_model(toy_config.model, feature_names=["number"], label_names=["number"])
  for type_name, message in [
    (
      f"{USER}:NoHooks",
      r"custom.mine.type '.*:NoHooks' has no after_eval\(step, scalars, checkpoint\) and at_end",
    ),
    (f"{USER}:StepLog", r"custom.mine: .*:StepLog refuses these arguments \(.*'file'"),
    ("nodots", r"custom.mine.type is 'nodots'; name your own exporter class as 'package.module:Class'"),
  ]:
    with toy_config.unlocked():
      toy_config.train.exporters.custom = {"mine": {"type": type_name}}
    with pytest.raises(UserError, match=f"^train.exporters.{message}"):
      Exporters(toy_config.train.exporters, model=model, features_map={}, model_dir="/x", has_eval=False)


def _checkpoint_values(model_dir):
  reader = tf.train.load_checkpoint(model_dir)
  return {name: reader.get_tensor(name) for name in ("toy/w1", "toy/b1", "toy/w2", "toy/b2")}


def test_later_spelling_toy_trains_like_toy_yaml(tmp_path):
  later, today = str(tmp_path / "later"), str(tmp_path / "today")
  result = run_deep("trainer", "train", "toy_later", "-d", FIXTURES, "-p", "model.model_dir", later)
  assert result.returncode == 0, result.stderr[-3000:]
  result = run_deep("trainer", "train", "toy.yaml", "-p", "model.model_dir", today)
  assert result.returncode == 0, result.stderr[-3000:]

  assert read_scalars(os.path.join(later, "eval")) == read_scalars(os.path.join(today, "eval"))
  later_values, today_values = _checkpoint_values(later), _checkpoint_values(today)
  for name, value in today_values.items():
    assert (later_values[name] == value).all(), name
  # The best exporter and the copier ran on the one (final) evaluation.
  assert len(os.listdir(os.path.join(later, "export", "best_exporter"))) == 1
  assert tf.train.latest_checkpoint(os.path.join(later, "best_checkpoints")).endswith("model.ckpt-10")

  resolved = json.loads(open(os.path.join(later, "config.json")).read())
  assert (
    resolved["train"]["predict_feeder"]["file_patterns"] == resolved["train"]["eval_feeder"]["file_patterns"]
  )
  predictions = str(tmp_path / "predictions.jsonl")
  result = run_deep(
    "trainer", "predict", "toy_later", "-d", FIXTURES, "-p", "model.model_dir", later, "-o", predictions
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(open(predictions).readlines()) == 10


def test_user_feeder_and_exporters_train_through_deep(tmp_path):
  model_dir = str(tmp_path / "model")
  result = run_deep(
    "trainer", "train", "toy_custom", "-d", FIXTURES, "-p", "model.model_dir", model_dir, cwd=tmp_path
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / "marker.txt").read_text() == "built with seed 42\n"  # The user's feeder, seeded.
  calls = json.loads(open(os.path.join(model_dir, "steps.json")).read())
  assert [call[:2] for call in calls] == [
    ["after_eval", 4],
    ["after_eval", 8],
    ["after_eval", 10],
    ["at_end", 10],
  ]
  assert calls[0][2:] == [["accuracy", "loss"], "model.ckpt-4"]
  assert calls[-1][2] == "train.exporters.custom.step_log"
  assert os.path.isfile(os.path.join(calls[-1][3], "saved_model.pb"))
  # LatestExporter: an export at every evaluation, the newest 2 kept.
  assert len(os.listdir(os.path.join(model_dir, "export", "latest"))) == 2


def test_p_keys_of_the_later_spelling_reach_deephub_keys():
  config = yaml_variants.load_yaml_variant(os.path.join(FIXTURES, "toy_later.yaml"))
  overrides.apply_overrides(config, [("train.train_feeder.init_args.batch_size", "5")])
  assert config.train.train_feeder.batch_size == 5
  with pytest.raises(UserError, match="unknown config key 'train.eval_feeder.batchsize'"):
    overrides.apply_overrides(config, [("train.eval_feeder.init_args.batchsize", "5")])
  custom = yaml_variants.load_yaml_variant(os.path.join(FIXTURES, "toy_custom.yaml"))
  overrides.apply_overrides(custom, [("train.train_feeder.init_args.marker", "elsewhere.txt")])
  assert custom.train.train_feeder.init_args.marker == "elsewhere.txt"  # A user class keeps its init_args.

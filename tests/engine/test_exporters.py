"""Exporters in a real run: final, best by metric (keep N) and the best-checkpoint copier."""

import os

import pytest
import tensorflow as tf

from deephub.engine import train_and_evaluate
from deephub.engine.exporters import Exporters
from deephub.errors import UserError
from deephub.models import build_model
from deephub.resources import toy_data_dir


def _configure(config):
  # Evaluating on the train records makes the eval loss fall at every step.
  config.train.eval_feeder.file_patterns = [os.path.join(toy_data_dir(), "train-*")]
  config.train.epochs = 4
  config.train.steps_per_loop = 1
  config.train.validation_steps = 1
  exporters = config.train.exporters
  exporters.final.name = "final"
  exporters.best.name = "best_exporter"
  exporters.best.exports_to_keep = 2
  exporters.best_checkpoint_copier.name = "best_checkpoints"
  exporters.best_checkpoint_copier.checkpoints_to_keep = 2


def _listing(path):
  return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_final_best_and_copier(toy_config):
  _configure(toy_config)
  train_and_evaluate(toy_config)
  model_dir = toy_config.model.model_dir

  final = _listing(os.path.join(model_dir, "export", "final"))
  assert len(final) == 1 and final[0].isdigit()
  assert os.path.isfile(os.path.join(model_dir, "export", "final", final[0], "saved_model.pb"))
  best = _listing(os.path.join(model_dir, "export", "best_exporter"))
  assert len(best) == 2 and all(name.isdigit() for name in best)  # Newest 2 kept; no temp-*.

  copied = os.path.join(model_dir, "best_checkpoints")
  assert {name.split(".")[1] for name in _listing(copied) if name != "checkpoint"} == {"ckpt-3", "ckpt-4"}
  assert tf.train.latest_checkpoint(copied) == os.path.join(copied, "model.ckpt-4")  # The best.
  state = tf.train.get_checkpoint_state(copied)
  assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["model.ckpt-4", "model.ckpt-3"]


def test_best_remembers_earlier_runs(toy_config):
  _configure(toy_config)
  train_and_evaluate(toy_config)
  model_dir = toy_config.model.model_dir
  exports_before = _listing(os.path.join(model_dir, "export", "best_exporter"))
  # Resumed with learning rate 0: the eval loss repeats, which beats nothing.
  toy_config.train.epochs = 5
  toy_config.model.learning_rate = 0.0
  train_and_evaluate(toy_config)
  # A new export would have replaced the oldest of the two kept.
  assert _listing(os.path.join(model_dir, "export", "best_exporter")) == exports_before
  copied = os.path.join(model_dir, "best_checkpoints")
  assert tf.train.latest_checkpoint(copied) == os.path.join(copied, "model.ckpt-4")


def test_latest_exports_at_every_evaluation_and_keeps_the_newest(toy_config):
  _configure(toy_config)
  exporters = toy_config.train.exporters
  exporters.final.name = exporters.best.name = exporters.best_checkpoint_copier.name = ""
  exporters.latest.name, exporters.latest.exports_to_keep = "latest", 3
  toy_config.train.epochs = 5  # Evaluations at steps 1..5: five exports, the newest three kept.
  train_and_evaluate(toy_config)
  latest = _listing(os.path.join(toy_config.model.model_dir, "export", "latest"))
  assert len(latest) == 3 and all(name.isdigit() for name in latest)


@pytest.mark.parametrize(
  "section, key, value, has_eval, error",
  [
    (
      "best",
      "name",
      "best_exporter",
      False,
      "train.exporters.best.name is 'best_exporter' but train.eval_feeder",
    ),
    ("best_checkpoint_copier", "name", "best_checkpoints", False, "best_checkpoint_copier.name is"),
    ("best", "exports_to_keep", 0, True, "exports_to_keep is 0; set it to 1 or more"),
    ("latest", "name", "latest", False, "train.exporters.latest.name is 'latest' but train.eval_feeder"),
    ("latest", "exports_to_keep", 0, True, "latest.exports_to_keep is 0; set it to 1 or more"),
    (
      "best_checkpoint_copier",
      "checkpoints_to_keep",
      0,
      True,
      "checkpoints_to_keep is 0; set it to 1 or more",
    ),
  ],
)
def test_config_errors(toy_config, section, key, value, has_eval, error):
  exporters = toy_config.train.exporters
  exporters.best.name = exporters.best_checkpoint_copier.name = exporters.latest.name = ""
  exporters[section].name = "on"
  exporters[section][key] = value
  model = build_model(toy_config.model, feature_names=["number"], label_names=["number"])
  with pytest.raises(UserError, match=error):
    Exporters(
      exporters, model=model, features_map={}, model_dir=toy_config.model.model_dir, has_eval=has_eval
    )

"""Early stopping: Estimator's no-decrease rule (table-driven) and a real stopped run."""

import logging
import os

import pytest
import tensorflow as tf

from deephub.engine import train_and_evaluate
from deephub.engine.early_stopping import stop_reason
from deephub.errors import UserError
from tests.conftest import read_scalars


def _history(*pairs):
  return {step: {"loss": value, "accuracy": 1 - value} for step, value in pairs}


@pytest.mark.parametrize(
  "history, steps, min_steps, higher, stops",
  [
    (_history((10, 1.0), (20, 0.9), (30, 0.8)), 10, 0, False, False),  # Still decreasing.
    (_history((10, 1.0), (20, 1.1)), 10, 0, False, True),  # 10 steps since the best.
    (_history((10, 1.0), (20, 1.0)), 10, 0, False, True),  # Equal is no decrease.
    (_history((10, 1.0), (20, 1.1)), 11, 0, False, False),
    (_history((10, 1.0), (20, 1.1), (30, 1.2)), 20, 0, False, True),
    (_history((10, 0.1), (20, 1.0), (30, 1.1)), 10, 15, False, True),  # Steps < 15 ignored.
    (_history((10, 0.1), (20, 1.0), (30, 0.9)), 10, 15, False, False),
    (_history((10, 0.9), (20, 1.0)), 10, 0, True, True),  # accuracy (1 - loss) fell: stop.
    (_history((10, 1.0), (20, 0.9)), 10, 0, True, False),
    ({}, 1, 0, False, False),
  ],
)
def test_stop_reason(history, steps, min_steps, higher, stops):
  metric = "accuracy" if higher else "loss"
  reason = stop_reason(
    history, metric=metric, steps_without_improvement=steps, min_steps=min_steps, higher_is_better=higher
  )
  assert (reason is not None) == stops, reason


def test_stop_reason_names_the_metrics_on_a_typo():
  with pytest.raises(UserError, match="'los' but the evaluation at step 10 has only accuracy, loss"):
    stop_reason(_history((10, 1.0)), metric="los", steps_without_improvement=1, min_steps=0)


def test_stops_early_with_final_checkpoint_and_reason(toy_config, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  # Learning rate 1 makes the eval loss jump up after the first steps.
  toy_config.model.learning_rate = 1.0
  toy_config.train.epochs = 30
  toy_config.train.steps_per_loop = 1
  toy_config.train.validation_steps = 1
  toy_config.train.early_stopping_metric = "loss"
  toy_config.train.early_stopping_steps_without_decrease = 3
  toy_config.train.early_stopping_hook_run_every_steps = 1
  train_and_evaluate(toy_config)
  model_dir = toy_config.model.model_dir
  losses = read_scalars(os.path.join(model_dir, "eval"))["loss"]
  best = min(losses, key=losses.get)
  last = max(losses)
  assert last == best + 3 < 30  # Stopped at the first evaluation 3 steps after the best.
  assert tf.train.latest_checkpoint(model_dir).endswith(f"model.ckpt-{last}")
  assert f"Early stopping at step {last}: no decrease in eval loss for 3 steps" in caplog.text


@pytest.mark.parametrize(
  "steps, eval_files, error",
  [
    (None, True, "early_stopping_steps_without_decrease is None; set it to 1 or more"),
    (5, False, "train.eval_feeder has no file_patterns"),
  ],
)
def test_incomplete_settings_fail_before_training(toy_config, steps, eval_files, error):
  toy_config.train.early_stopping_metric = "loss"
  toy_config.train.early_stopping_steps_without_decrease = steps
  if not eval_files:
    toy_config.train.eval_feeder.file_patterns = []
  with pytest.raises(UserError, match=error):
    train_and_evaluate(toy_config)
  assert tf.train.latest_checkpoint(toy_config.model.model_dir) is None

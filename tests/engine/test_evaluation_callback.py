"""`train_and_evaluate(on_evaluation=...)`: called after each evaluation before the last step; True stops."""

import tensorflow as tf

from deephub.engine import train_and_evaluate
from tests.conftest import read_scalars


def _evaluate_every_2_steps(config):
  config.train.validation_steps = 2
  config.train.steps_per_loop = 1
  return config


def test_callback_sees_every_evaluation_before_the_last_step(toy_config):
  seen = []
  config = _evaluate_every_2_steps(toy_config)
  results = train_and_evaluate(config, on_evaluation=lambda step, scalars: seen.append((step, dict(scalars))))
  assert [step for step, _ in seen] == [2, 4, 6, 8]  # Step 10 is the final evaluation: not passed.
  assert all(set(scalars) == set(results) for _, scalars in seen)
  eval_steps = read_scalars(f"{toy_config.model.model_dir}/eval")["loss"]
  assert {step: scalars["loss"] for step, scalars in seen} == {s: v for s, v in eval_steps.items() if s < 10}


def test_callback_returning_true_stops_training_with_a_checkpoint(toy_config):
  results = train_and_evaluate(_evaluate_every_2_steps(toy_config), on_evaluation=lambda step, _: step >= 4)
  model_dir = toy_config.model.model_dir
  assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-4")
  assert sorted(read_scalars(f"{model_dir}/eval")["loss"]) == [2, 4]  # No second evaluation at step 4.
  assert results["loss"] == read_scalars(f"{model_dir}/eval")["loss"][4]

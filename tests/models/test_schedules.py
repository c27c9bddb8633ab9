"""Learning-rate schedules from model params: values at steps, errors, and the toy model logging them."""

import pytest

from deephub.engine import train_and_evaluate
from deephub.errors import UserError
from deephub.models.schedules import learning_rate_schedule
from tests.conftest import read_scalars

EXPONENTIAL = {"num_steps_per_decay": 10, "learning_rate_decay_factor": 0.5}
PIECEWISE = {"piecewise_lr_boundaries": [3, 6], "piecewise_lr_values": [0.1, 0.01, 0.001]}
CYCLICAL = {"min_lr": 0.1, "max_lr": 0.5, "cycle_size_steps": 4}


@pytest.mark.parametrize(
  "params, step, expected",
  [
    ({}, 1000, 1.0),
    (EXPONENTIAL, 0, 1.0),
    (EXPONENTIAL, 5, 0.5**0.5),
    (EXPONENTIAL, 20, 0.25),
    ({**EXPONENTIAL, "staircase": True}, 9, 1.0),
    ({**EXPONENTIAL, "staircase": True}, 10, 0.5),
    ({**EXPONENTIAL, "staircase": True}, 25, 0.25),
    (PIECEWISE, 0, 0.1),
    (PIECEWISE, 3, 0.1),  # Up to and including the boundary.
    (PIECEWISE, 4, 0.01),
    (PIECEWISE, 6, 0.01),
    (PIECEWISE, 7, 0.001),
    (PIECEWISE, 10**6, 0.001),
    (CYCLICAL, 0, 0.5),  # Each cycle starts at max_lr...
    (CYCLICAL, 1, 0.1 + 0.2 * (1 + 0.5**0.5)),
    (CYCLICAL, 2, 0.3),  # ...half way it is the mean...
    (CYCLICAL, 3, 0.1 + 0.2 * (1 - 0.5**0.5)),
    (CYCLICAL, 4, 0.5),  # ...and it restarts.
    (CYCLICAL, 6, 0.3),
  ],
)
def test_schedule_values(params, step, expected):
  schedule = learning_rate_schedule(1.0, **params)
  value = schedule if isinstance(schedule, float) else float(schedule(step))
  assert value == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
  "params, message",
  [
    ({**EXPONENTIAL, **CYCLICAL}, r"params of exponential decay and cyclical cosine"),
    ({"num_steps_per_decay": 10}, r"also needs model.learning_rate_decay_factor"),
    ({"min_lr": 0.1, "max_lr": 0.2}, r"also needs model.cycle_size_steps"),
    ({**PIECEWISE, "piecewise_lr_values": [0.1]}, r"1 values for 2 boundaries"),
    ({**CYCLICAL, "min_lr": 0.5}, r"min_lr \(0.5\) must be smaller than model.max_lr"),
    ({**EXPONENTIAL, "num_steps_per_decay": 0}, r"num_steps_per_decay is 0"),
  ],
)
def test_schedule_errors(params, message):
  with pytest.raises(UserError, match=message):
    learning_rate_schedule(1.0, **params)


def test_toy_model_trains_with_a_schedule_and_logs_it(toy_config):
  with toy_config.unlocked():
    toy_config.model.piecewise_lr_boundaries = [3]
    toy_config.model.piecewise_lr_values = [0.1, 0.01]
  toy_config.train.epochs = 6
  toy_config.train.steps_per_loop = 4
  train_and_evaluate(toy_config)
  logged = read_scalars(toy_config.model.model_dir)["learning_rate"]
  # Global step s logs the rate of its own update, made at optimizer step s - 1.
  assert logged == pytest.approx({1: 0.1, 2: 0.1, 3: 0.1, 4: 0.1, 5: 0.01, 6: 0.01})


def test_toy_model_rejects_a_half_schedule(toy_config):
  with toy_config.unlocked():
    toy_config.model.min_lr = 0.1
  with pytest.raises(UserError, match=r"cyclical cosine learning-rate schedule also needs model.max_lr"):
    train_and_evaluate(toy_config)

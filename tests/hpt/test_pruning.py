"""Stalled and diverging trials are pruned at an evaluation; a NaN trial fails and the study goes on."""

import os

import tensorflow as tf

from deephub.hpt import records
from deephub.resources import toy_data_dir
from tests.cli_run import run_deep
from tests.hpt.conftest import load_study, optuna, write_tune

GOOD, STALL, DIVERGE, NAN = 0.01, 1e-7, 1e30, 3e38
STEPS = 12


def test_stalled_and_diverging_trials_are_pruned_and_nan_fails(tmp_path):
  tune = write_tune(
    tmp_path / "prune.yaml",
    # With this seed the sampler draws GOOD, STALL, DIVERGE, STALL, NAN, GOOD (checked below).
    seed=15,
    pruner="median",
    pruner_startup_trials=1,
    params={"model.learning_rate": {"type": "CATEGORICAL", "choices": [GOOD, STALL, DIVERGE, NAN]}},
    fixed_params={
      "train.epochs": STEPS,
      "train.validation_steps": 3,
      "train.steps_per_loop": 3,
      # Evaluating on the train records makes the eval loss show training progress.
      "train.eval_feeder.file_patterns": [os.path.join(toy_data_dir(), "train-*")],
    },
  )
  study_dir = str(tmp_path / "study")
  result = run_deep("hpt", "run", tune, "--study-dir", study_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  trials = load_study(study_dir, "prune").get_trials()
  rates = [t.params["model.learning_rate"] for t in trials]
  assert rates == [GOOD, STALL, DIVERGE, STALL, NAN, GOOD]
  State = optuna.trial.TrialState
  assert [t.state for t in trials] == [
    State.COMPLETE, State.PRUNED, State.PRUNED, State.PRUNED, State.FAIL, State.COMPLETE,
  ]  # fmt: skip
  good = trials[0]
  assert sorted(good.intermediate_values) == [3, 6, 9]  # Every evaluation before the last step.
  for trial in trials[1:4]:
    stopped = trial.user_attrs[records.STEPS_ATTR]
    assert stopped < STEPS and sorted(trial.intermediate_values) == [stopped]
    assert trial.intermediate_values[stopped] > good.intermediate_values[stopped]
    assert trial.value == trial.intermediate_values[stopped]
    # Stopped at once, keeping its checkpoint; the final evaluation did not run again.
    model_dir = os.path.join(study_dir, f"trial-{trial.number}")
    assert tf.train.latest_checkpoint(model_dir).endswith(f"model.ckpt-{stopped}")
  failed = trials[4]
  assert "NonFiniteLossError" in failed.user_attrs[records.ERROR_ATTR]
  assert "loss is nan" in failed.user_attrs[records.ERROR_ATTR]
  assert "deep hpt: trial 4 fail: NonFiniteLossError: loss is nan" in result.stderr
  assert trials[5].value == good.value  # The study went on after the failure.

  status = run_deep("hpt", "status", tune, "--study-dir", study_dir)
  assert status.returncode == 0, status.stderr[-3000:]
  rows = [line.split() for line in status.stdout.splitlines()[1:7]]
  # The best first (trials 0 and 5 tie: the first wins), then by number.
  assert [row[:2] for row in rows] == [
    ["0", "complete"], ["1", "pruned"], ["2", "pruned"], ["3", "pruned"], ["4", "fail"], ["5", "complete"],
  ]  # fmt: skip

"""Two worker processes (`--workers 2`) share one study through a real PostgreSQL server."""

import os
import uuid

import tensorflow as tf

from deephub.hpt import records
from tests.cli_run import run_deep
from tests.hpt.conftest import load_study, optuna, write_tune

TRIALS = 5


def test_two_workers_share_a_postgres_study_and_run_each_trial_once(tmp_path, postgres_url):
  name = f"pg-{uuid.uuid4().hex[:8]}"  # The server may outlive this test: a study of its own.
  tune = write_tune(tmp_path / "pg.yaml", study_name=name, max_trials=TRIALS)
  study_dir = str(tmp_path / "study")
  result = run_deep("hpt", "run", tune, "--study-dir", study_dir, "--storage", postgres_url, "--workers", "2")
  assert result.returncode == 0, result.stderr[-3000:]
  assert not os.path.exists(os.path.join(study_dir, "study.db"))  # The study lives in PostgreSQL.

  trials = load_study(study_dir, name, storage=postgres_url).get_trials()
  counted = [t for t in trials if t.number < TRIALS]
  complete = optuna.trial.TrialState.COMPLETE
  assert [(t.number, t.state) for t in counted] == [(n, complete) for n in range(TRIALS)]
  # A worker that found every trial taken handed its extra trial back, unsampled.
  assert all(t.state == optuna.trial.TrialState.WAITING and not t.params for t in trials[TRIALS:])
  owners = [t.system_attrs[records.OWNER_ATTR] for t in counted]
  print("trials per worker:", {owner: owners.count(owner) for owner in owners})
  for trial in counted:  # Run once: one training run's events, never resumed.
    model_dir = os.path.join(study_dir, f"trial-{trial.number}")
    assert len(tf.io.gfile.glob(os.path.join(model_dir, "events.out.tfevents.*.v2"))) == 1
    assert records.RESUMED_ATTR not in trial.user_attrs
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-3")
  assert len(set(t.params["model.learning_rate"] for t in counted)) == TRIALS

  status = run_deep("hpt", "status", tune, "--study-dir", study_dir, "--storage", postgres_url)
  assert status.returncode == 0, status.stderr[-3000:]
  assert f"{TRIALS} of {TRIALS} trials finished" in result.stderr

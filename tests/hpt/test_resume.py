"""A sweep killed with SIGKILL mid-trial, then rerun: the trial resumes from its checkpoint, counted once."""

import os
import signal
import subprocess
import time

import tensorflow as tf

from deephub.engine.event_files import read_scalars
from deephub.hpt import records
from tests.cli_run import child_env, deep_command, run_deep
from tests.conftest import REPO
from tests.hpt.conftest import load_study, optuna, write_tune

STEPS = 600  # Long enough to be caught mid-trial.
EVERY = 50  # Checkpoints and train summaries.


def _checkpoint_step(model_dir: str) -> int:
  latest = tf.train.latest_checkpoint(model_dir)
  return int(latest.rsplit("-", 1)[1]) if latest else -1


def test_sigkill_mid_trial_then_rerun_resumes_it(tmp_path):
  tune = write_tune(
    tmp_path / "resume.yaml",
    max_trials=2,
    params={"model.learning_rate": {"type": "REAL", "min": 1e-3, "max": 1e-2}},
    fixed_train_params={"epochs": STEPS, "steps_per_loop": 10, "save_checkpoint_steps": EVERY,
                        "save_summary_steps": EVERY, "log_step_count_steps": 1000},
  )  # fmt: skip
  study_dir = str(tmp_path / "study")
  trial_dir = os.path.join(study_dir, "trial-0")
  first = subprocess.Popen(
    deep_command("hpt", "run", tune, "--study-dir", study_dir),
    cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
  )  # fmt: skip
  try:
    deadline = time.monotonic() + 240
    while _checkpoint_step(trial_dir) < 2 * EVERY:
      assert first.poll() is None, f"the sweep ended before it could be killed: {first.stderr.read()[-2000:]}"
      assert time.monotonic() < deadline, "trial 0 wrote no second checkpoint within 240 s"
      time.sleep(0.05)
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
  killed_at = _checkpoint_step(trial_dir)
  assert 2 * EVERY <= killed_at < STEPS
  (running,) = load_study(study_dir, "resume").get_trials()
  assert running.state == optuna.trial.TrialState.RUNNING  # Left behind by the dead worker.

  result = run_deep("hpt", "run", tune, "--study-dir", study_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  trials = load_study(study_dir, "resume").get_trials()
  complete = optuna.trial.TrialState.COMPLETE
  assert [(t.number, t.state) for t in trials] == [(0, complete), (1, complete)]  # max_trials, once each.
  resumed = trials[0]
  assert resumed.params == running.params  # The values it was given before the kill.
  assert resumed.user_attrs[records.RESUMED_ATTR] == killed_at
  assert resumed.user_attrs[records.STEPS_ATTR] == STEPS
  assert records.RESUMED_ATTR not in trials[1].user_attrs
  # Two runs wrote train events into trial-0: the second started after the checkpoint, not at step 1.
  event_files = sorted(tf.io.gfile.glob(os.path.join(trial_dir, "events.out.tfevents.*.v2")))
  assert len(event_files) == 2
  second_run = tmp_path / "second_run"
  second_run.mkdir()
  tf.io.gfile.copy(event_files[1], str(second_run / os.path.basename(event_files[1])))
  assert min(read_scalars(str(second_run))) == killed_at + EVERY

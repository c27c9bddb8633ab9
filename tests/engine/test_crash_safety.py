"""kill -9 at random moments never leaves a checkpoint a reader cannot load."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from tests.conftest import REPO

TOTAL_STEPS = 300


def start_training(model_dir):
  args = [
    sys.executable, "-m", "deephub.train", "--variant=toy", f"--config.model.model_dir={model_dir}",
    f"--config.train.epochs={TOTAL_STEPS}", "--config.train.steps_per_loop=1",
    "--config.train.save_checkpoint_steps=1", "--config.train.keep_checkpoint_max=3",
    "--config.train.save_summary_steps=50",
  ]  # fmt: skip
  return subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip


def latest_step(model_dir):
  """Step of the newest listed checkpoint, after loading every tensor of it."""
  latest = tf.train.latest_checkpoint(model_dir)
  if latest is None:
    return -1
  reader = tf.train.load_checkpoint(latest)
  for name, dtype in reader.get_variable_to_dtype_map().items():
    if dtype != tf.variant:
      value = reader.get_tensor(name)
      if dtype.is_floating:
        assert np.all(np.isfinite(value)), name
  state = tf.train.get_checkpoint_state(model_dir)
  for path in state.all_model_checkpoint_paths:  # Every listed checkpoint is complete.
    assert os.path.isfile(os.path.join(model_dir, f"{path}.index")), path
  return int(reader.get_tensor("global_step"))


def test_kill_9_during_training_and_checkpoint_writes(tmp_path):
  rng = random.Random(1234)
  model_dir = str(tmp_path / "model")
  previous = -1
  kills = 0
  while kills < 10:
    child = start_training(model_dir)
    deadline = time.monotonic() + 240
    # Let the run make progress past the last checkpoint, then kill it at a random moment.
    while latest_step(model_dir) <= previous and child.poll() is None and time.monotonic() < deadline:
      time.sleep(0.02)
    assert child.poll() is None, f"training ended before it was killed: {child.stderr.read()[-2000:]}"
    time.sleep(rng.uniform(0.0, 0.3))
    child.send_signal(signal.SIGKILL)
    child.wait()
    kills += 1
    step = latest_step(model_dir)
    assert step >= previous, f"kill {kills}: resumed checkpoint went back from {previous} to {step}"
    assert step < TOTAL_STEPS, "the run finished before the kills were done; raise TOTAL_STEPS"
    previous = step

  final = start_training(model_dir)
  _, stderr = final.communicate(timeout=600)
  assert final.returncode == 0, stderr[-3000:]
  assert "Resuming from" in stderr
  assert latest_step(model_dir) == TOTAL_STEPS
  assert not [name for name in os.listdir(model_dir) if name.endswith("_temp") or name.endswith(".tmp")]

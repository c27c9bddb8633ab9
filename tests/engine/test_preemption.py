"""SIGTERM: finish the current loop, checkpoint, exit 0; a rerun continues."""

import os
import re
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

from deephub.engine import preemption
from tests.conftest import REPO, read_scalars, run_cli


def test_sigterm_is_recorded_only_while_decorated():
  before = signal.getsignal(signal.SIGTERM)

  @preemption.handles_sigterm
  def work():
    assert not preemption.stop_requested(None, 1)
    os.kill(os.getpid(), signal.SIGTERM)  # Delivered before kill() returns to Python.
    return preemption.stop_requested(None, 1)

  assert work() is True
  assert signal.getsignal(signal.SIGTERM) is before
  assert not preemption.stop_requested(None, 1)  # Cleared for the next run.


def test_reclaim_takes_sigterm_back_from_a_later_handler():
  @preemption.handles_sigterm
  def work():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # As TensorFlow's multi-worker runtime does in C++.
    preemption.reclaim_sigterm()
    os.kill(os.getpid(), signal.SIGTERM)
    return preemption.stop_requested(None, 1)

  assert work() is True


def test_handler_is_restored_when_training_raises():
  before = signal.getsignal(signal.SIGTERM)

  @preemption.handles_sigterm
  def fails():
    raise ValueError("boom")

  with pytest.raises(ValueError, match="boom"):
    fails()
  assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_checkpoints_exits_zero_and_rerun_continues(tmp_path):
  model_dir = str(tmp_path / "model")
  args = [
    "--variant=toy",
    f"--config.model.model_dir={model_dir}",
    "--config.train.steps_per_loop=1",
    "--config.train.log_step_count_steps=1",
  ]
  child = subprocess.Popen(
    [sys.executable, "-m", "deephub.train", *args, "--config.train.epochs=1000000"],
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": REPO},
    stderr=subprocess.PIPE,
    text=True,
  )
  try:
    for line in child.stderr:  # absl logs one line per loop.
      if re.search(r"step 3/1000000 ", line):
        child.send_signal(signal.SIGTERM)
        break
    stderr = child.communicate(timeout=300)[1]
  finally:
    child.kill()
  assert child.returncode == 0, stderr[-3000:]
  stopped = int(re.search(r"Preempted at step (\d+)", stderr).group(1))
  assert 3 <= stopped < 1000000
  reader = tf.train.load_checkpoint(model_dir)
  assert reader.get_tensor("global_step") == stopped
  assert read_scalars(os.path.join(model_dir, "eval")) == {}  # No slow final eval before exiting.
  assert f"deephub: stopped toy early for SIGTERM with a checkpoint in {model_dir}" in stderr
  assert "deephub: finished" not in stderr

  rerun = run_cli(*args, f"--config.train.epochs={stopped + 2}")
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert f"Resuming from {model_dir}/model.ckpt-{stopped}" in rerun.stderr
  assert "deephub: finished toy" in rerun.stderr
  assert tf.train.load_checkpoint(model_dir).get_tensor("global_step") == stopped + 2
  assert sorted(read_scalars(model_dir)["loss"]) == list(range(1, stopped + 3))  # None repeated.

"""Ctrl-C, SIGTERM during evaluation, a NaN loss and a kill past the last checkpoint, through the real CLI.

Each case ends with its exit code and one line of ours on stderr (lines
starting `deephub:`; absl's log lines are not ours), never a traceback, and
leaves the model_dir resumable from the right step.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tests.conftest import REPO, run_cli
from tests.engine.test_tensorboard import _free_port, _scalars, _wait_for_scalars

LOOP_EVERY_STEP = ["--config.train.steps_per_loop=1", "--config.train.log_step_count_steps=1"]


def _start(*args):
  """`python -m deephub.train ARGS` in the background, its stderr readable line by line."""
  return subprocess.Popen(
    [sys.executable, "-m", "deephub.train", *args],
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": REPO},
    stderr=subprocess.PIPE,
    text=True,
  )


def _read_until(child, pattern: str) -> str:
  """Reads the child's stderr until a line matches `pattern`; returns what it read."""
  seen = []
  for line in child.stderr:
    seen.append(line)
    if re.search(pattern, line):
      return "".join(seen)
  child.wait(timeout=60)
  pytest.fail(f"the child exited ({child.returncode}) before printing {pattern!r}:\n{''.join(seen)[-3000:]}")


def _finish(child, seen: str, timeout: float = 120) -> str:
  try:
    return seen + child.communicate(timeout=timeout)[1]
  finally:
    child.kill()


def ours(stderr: str) -> list[str]:
  """Our own lines on stderr (not absl's or TensorFlow's log lines)."""
  return [line for line in stderr.splitlines() if line.startswith("deephub:")]


def assert_no_traceback(stderr: str) -> None:
  assert "Traceback" not in stderr, stderr[-3000:]


def checkpoint_step(model_dir: str) -> int:
  return int(tf.train.load_checkpoint(model_dir).get_tensor("global_step"))


def test_first_ctrl_c_checkpoints_and_exits_130(tmp_path):
  model_dir = str(tmp_path / "model")
  child = _start("--variant=toy", f"--config.model.model_dir={model_dir}", "--config.train.epochs=1000000",
                 *LOOP_EVERY_STEP)  # fmt: skip
  seen = _read_until(child, r"step 3/1000000 ")
  child.send_signal(signal.SIGINT)
  stderr = _finish(child, seen)
  assert child.returncode == 130, stderr[-3000:]
  assert_no_traceback(stderr)
  step = checkpoint_step(model_dir)
  assert 3 <= step < 1000000
  assert ours(stderr) == [
    f"deephub: training toy into {model_dir}",
    f"deephub: stopped toy early for SIGINT with a checkpoint in {model_dir} "
    f"({model_dir}/model.ckpt-{step}); rerun the same command to continue",
  ]
  assert not tf.io.gfile.glob(f"{model_dir}/.model.ckpt-*")


def test_second_ctrl_c_aborts_inside_a_long_compiled_loop(tmp_path):
  # One compiled loop of a million steps: Python runs no signal handler until
  # it returns, so only the wakeup-fd watcher can act on the second Ctrl-C.
  model_dir = str(tmp_path / "model")
  child = _start("--variant=toy", f"--config.model.model_dir={model_dir}", "--config.train.epochs=1000000",
                 "--config.train.steps_per_loop=1000000")  # fmt: skip
  seen = _read_until(child, r"Saved checkpoint .*model\.ckpt-0")  # Just before the loop.
  child.send_signal(signal.SIGINT)
  seen += _read_until(child, r"Received SIGINT: stopping after the current loop")
  child.send_signal(signal.SIGINT)
  stderr = _finish(child, seen, timeout=60)  # The loop alone would take minutes.
  assert child.returncode == 130, stderr[-3000:]
  assert_no_traceback(stderr)
  assert ours(stderr)[1:] == [
    "deephub: aborted by a second Ctrl-C without writing a checkpoint; rerun the same command to continue "
    "from the last one"
  ]
  assert tf.train.latest_checkpoint(model_dir) == f"{model_dir}/model.ckpt-0"


def test_non_finite_loss_is_one_line_and_keeps_the_last_checkpoint(tmp_path):
  model_dir = str(tmp_path / "model")
  result = run_cli(
    "--variant=toy", f"--config.model.model_dir={model_dir}", "--config.model.learning_rate=3e38"
  )
  assert result.returncode == 2, result.stderr[-3000:]
  assert_no_traceback(result.stderr)
  lines = ours(result.stderr)
  assert lines[0] == f"deephub: training toy into {model_dir}"
  assert len(lines) == 2 and re.fullmatch(
    r"deephub: error: loss is (nan|inf) at step \d+ \(steps 1\.\.10\); the last checkpoint \(step 0\) is "
    r"untouched: .*nan_policy 'rollback'",
    lines[1],
  ), lines
  assert tf.train.latest_checkpoint(model_dir) == f"{model_dir}/model.ckpt-0"


def _write_toy_records(path: str, count: int) -> None:
  """`count` records in the toy's format (int64 `number` and `label`)."""
  with tf.io.TFRecordWriter(path) as writer:
    for i in range(count):
      example = tf.train.Example(
        features=tf.train.Features(
          feature={
            "number": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 100])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 100])),
          }
        )
      )
      writer.write(example.SerializeToString())


def _long_eval(records: str) -> list[str]:
  """Flags that evaluate on `records`, 10 batches per compiled call."""
  return [
    f"--config.train.eval_feeder.file_patterns={records}",
    "--config.train.eval_feeder.auto_generate_meta=True",
    "--config.train.steps_per_loop=10",
  ]


@pytest.fixture(scope="module")
def trained_toy(tmp_path_factory):
  """A toy model_dir trained 2 steps."""
  model_dir = str(tmp_path_factory.mktemp("trained") / "model")
  result = run_cli("--variant=toy", f"--config.model.model_dir={model_dir}", "--config.train.epochs=2")
  assert result.returncode == 0, result.stderr[-3000:]
  return model_dir


def test_sigterm_stops_evaluate_mode_between_batches_with_one_line(trained_toy, tmp_path):
  # 200,000 batches of one: the whole pass would take minutes.
  records = str(tmp_path / "long-00000-of-00001")
  _write_toy_records(records, 200_000)
  before = sorted(os.listdir(trained_toy))
  child = _start("--variant=toy", "--mode=evaluate", f"--config.model.model_dir={trained_toy}",
                 *_long_eval(records), "--config.train.eval_feeder.batch_size=1")  # fmt: skip
  seen = _read_until(child, r"model\.ckpt-2")  # Restored.
  time.sleep(1)  # Into the pass.
  child.send_signal(signal.SIGTERM)
  stderr = _finish(child, seen, timeout=60)
  assert child.returncode == 143, stderr[-3000:]
  assert_no_traceback(stderr)
  assert ours(stderr) == [
    "deephub: evaluate of toy stopped by SIGTERM before it finished; rerun the same command to do it again"
  ]
  assert sorted(os.listdir(trained_toy)) == before  # No eval event written.


def test_sigterm_during_the_final_evaluation_stops_with_a_checkpoint_and_the_rerun_evaluates(tmp_path):
  records = str(tmp_path / "long-00000-of-00001")
  _write_toy_records(records, 200_000)
  model_dir = str(tmp_path / "model")
  args = ["--variant=toy", f"--config.model.model_dir={model_dir}", "--config.train.epochs=2",
          *_long_eval(records)]  # fmt: skip
  child = _start(*args, "--config.train.eval_feeder.batch_size=1")
  seen = _read_until(child, r"Saved checkpoint .*model\.ckpt-2")  # The last step; the final eval follows.
  time.sleep(1)
  child.send_signal(signal.SIGTERM)
  stderr = _finish(child, seen, timeout=60)
  assert child.returncode == 0, stderr[-3000:]
  assert_no_traceback(stderr)
  assert ours(stderr)[1:] == [
    f"deephub: stopped toy early for SIGTERM with a checkpoint in {model_dir} ({model_dir}/model.ckpt-2); "
    "rerun the same command to continue"
  ]
  assert _eval_steps(model_dir) == []
  rerun = run_cli(*args, "--config.train.eval_feeder.batch_size=1000")  # Only evaluates, in 200 batches.
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert _eval_steps(model_dir) == [2]


def _eval_steps(model_dir: str) -> list[int]:
  steps = []
  for path in tf.io.gfile.glob(f"{model_dir}/eval/events.*"):
    steps += [e.step for e in tf.compat.v1.train.summary_iterator(path) if e.summary.value]
  return sorted(steps)


def _loss_steps_in_files(model_dir: str) -> list[int]:
  """Every step a `loss` was written at, over all train event files (repeats included)."""
  steps = []
  for path in sorted(tf.io.gfile.glob(f"{model_dir}/events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      steps += [event.step for value in event.summary.value if value.tag == "loss"]
  return sorted(steps)


def test_tensorboard_shows_each_step_once_after_a_kill_past_the_last_checkpoint(tmp_path):
  model_dir = str(tmp_path / "model")
  common = ["--variant=toy", f"--config.model.model_dir={model_dir}",
            "--config.train.save_checkpoint_steps=4", *LOOP_EVERY_STEP]  # fmt: skip
  child = _start(*common, "--config.train.epochs=1000000")
  try:
    for line in child.stderr:
      # Freeze the run after each logged step until it holds summaries past its checkpoint, then kill it.
      found = re.search(r"step (\d+)/1000000 ", line)
      if found and int(found.group(1)) >= 6:
        child.send_signal(signal.SIGSTOP)
        checkpoint, written = checkpoint_step(model_dir), max(_loss_steps_in_files(model_dir))
        if written > checkpoint:
          child.kill()
          break
        child.send_signal(signal.SIGCONT)
  finally:
    child.kill()
    child.wait(timeout=60)
  orphans = list(range(checkpoint + 1, written + 1))
  final = written + 3
  rerun = run_cli(*common, f"--config.train.epochs={final}")
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert f"Resuming from {model_dir}/model.ckpt-{checkpoint} " in rerun.stderr
  # The event files hold the orphaned steps twice: once from each run.
  assert _loss_steps_in_files(model_dir) == sorted([*range(1, final + 1), *orphans])

  port = _free_port()
  tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
  # --load_fast=false: TensorBoard's own loader, the one that honours SessionLog
  # (the Rust data server keeps one point per step by itself).
  server = subprocess.Popen(
    [tensorboard, "--logdir", model_dir, "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1",
     "--load_fast", "false"],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
  )  # fmt: skip
  try:
    _wait_for_scalars(server, port, ".", "loss", final)
    time.sleep(2)  # A reload that would add anything more.
    loss = _scalars(port, ".", "loss")
  finally:
    server.terminate()
    server.wait(timeout=30)
  assert [step for _, step, _ in loss] == list(range(1, final + 1))
  # The orphaned steps show the resumed run's values (its event file is the newer one).
  resumed = {}
  newest = sorted(tf.io.gfile.glob(f"{model_dir}/events.out.tfevents.*"))[-1]
  for event in tf.compat.v1.train.summary_iterator(newest):
    for value in event.summary.value:
      if value.tag == "loss":
        resumed[event.step] = value.simple_value
  assert {step: value for _, step, value in loss if step in resumed} == pytest.approx(resumed)

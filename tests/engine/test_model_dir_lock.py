"""One trainer per model_dir: the flock, its takeover, the object-store lease, and real trainers."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from deephub.engine import model_dir_lock
from deephub.engine.model_dir_lock import LOCK_FILE, FileLock, Holder, Lease
from deephub.errors import UserError
from tests.conftest import REPO, run_cli


def dead_pid():
  child = subprocess.Popen([sys.executable, "-c", "pass"])
  child.wait()
  return child.pid


def write_holder(path, pid, started=None):
  now = time.time() if started is None else started
  with open(path, "w") as f:
    f.write(
      json.dumps({"pid": pid, "host": socket.gethostname(), "started": now, "heartbeat": now, "token": "x"})
    )


def test_second_lock_refuses_naming_the_holder_then_follows_a_clean_release(tmp_path, caplog):
  first = FileLock(str(tmp_path))
  first.acquire()
  holder = Holder.parse((tmp_path / LOCK_FILE).read_text())
  assert (holder.pid, holder.host) == (os.getpid(), socket.gethostname())
  with pytest.raises(
    UserError, match=rf"model_dir {tmp_path} is in use by another trainer \(pid {os.getpid()} on host"
  ):
    FileLock(str(tmp_path)).acquire()
  first.release()
  assert (tmp_path / LOCK_FILE).read_text() == ""  # A clean exit leaves no holder behind.
  caplog.set_level(logging.WARNING, logger="absl")
  second = FileLock(str(tmp_path))
  second.acquire()
  second.release()
  assert not [r for r in caplog.records if "Taking over" in r.getMessage()]


def test_released_flock_of_a_dead_trainer_is_taken_over(tmp_path, caplog):
  write_holder(tmp_path / LOCK_FILE, dead_pid())  # Killed: its flock went with it, its file stayed.
  caplog.set_level(logging.WARNING, logger="absl")
  lock = FileLock(str(tmp_path))
  lock.acquire()
  assert any("Taking over the model_dir lock" in r.getMessage() for r in caplog.records)
  assert Holder.parse((tmp_path / LOCK_FILE).read_text()).pid == os.getpid()
  lock.release()


def test_flock_held_for_a_dead_pid_is_taken_over(tmp_path, caplog):
  import fcntl

  path = tmp_path / LOCK_FILE
  write_holder(path, dead_pid())
  stray = os.open(path, os.O_RDWR)  # A process the dead trainer forked still holds the flock.
  fcntl.flock(stray, fcntl.LOCK_EX | fcntl.LOCK_NB)
  old_inode = os.fstat(stray).st_ino
  caplog.set_level(logging.WARNING, logger="absl")
  try:
    lock = FileLock(str(tmp_path))
    lock.acquire()
    assert any("which is gone (a process it started" in r.getMessage() for r in caplog.records)
    assert os.stat(path).st_ino != old_inode
    with pytest.raises(UserError, match="is in use by another trainer"):  # The new file is really held.
      FileLock(str(tmp_path)).acquire()
    lock.release()
  finally:
    os.close(stray)


def test_a_live_holder_on_this_host_is_never_taken_over(tmp_path):
  import fcntl

  path = tmp_path / LOCK_FILE
  write_holder(path, os.getpid())
  held = os.open(path, os.O_RDWR)
  fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
  try:
    with pytest.raises(UserError, match=f"pid {os.getpid()}"):
      FileLock(str(tmp_path)).acquire()
  finally:
    os.close(held)


class FakeClock:
  def __init__(self):
    self.now = 1_000_000.0

  def __call__(self):
    return self.now


def lease(path, clock, **kwargs):
  return Lease(str(path), clock=clock, sleep=lambda secs: None, lease_secs=120, heartbeat_secs=30, **kwargs)


def test_lease_refused_while_fresh_taken_over_when_stale(tmp_path, caplog):
  clock = FakeClock()
  a, b = lease(tmp_path, clock), lease(tmp_path, clock)
  a.acquire(heartbeat_thread=False)
  clock.now += 100
  with pytest.raises(
    UserError, match=r"in use by another trainer \(pid .* lease heartbeat 100 s ago, stale after 120 s"
  ):
    b.acquire(heartbeat_thread=False)
  assert a.refresh()  # The heartbeat keeps it fresh...
  clock.now += 119
  with pytest.raises(UserError, match="lease heartbeat 119 s ago"):
    b.acquire(heartbeat_thread=False)
  clock.now += 2  # ...until it stops for longer than the lease.
  caplog.set_level(logging.WARNING, logger="absl")
  b.acquire(heartbeat_thread=False)
  assert any("no heartbeat for 121 s" in r.getMessage() for r in caplog.records)
  assert not a.refresh() and a.lost  # The old holder learns it lost the lease.
  a.release()
  assert (tmp_path / LOCK_FILE).exists()  # ...and never removes the new holder's lease.
  b.release()
  assert not (tmp_path / LOCK_FILE).exists()


def test_lease_written_at_the_same_time_refuses_the_overwritten_writer(tmp_path):
  clock = FakeClock()
  other = Holder(pid=1, host="other-host", started=clock(), heartbeat=clock(), token="theirs")

  def other_writes_meanwhile(secs):
    (tmp_path / LOCK_FILE).write_text(other.dumps())

  late = Lease(str(tmp_path), clock=clock, sleep=other_writes_meanwhile)
  with pytest.raises(UserError, match="pid 1 on host other-host.*wrote the lease at the same time"):
    late.acquire(heartbeat_thread=False)


def test_lease_heartbeat_thread_refreshes(tmp_path):
  clock = FakeClock()
  beating = Lease(str(tmp_path), clock=clock, sleep=lambda s: None, heartbeat_secs=0.01)
  beating.acquire()
  first = Holder.parse((tmp_path / LOCK_FILE).read_text()).heartbeat
  clock.now += 50
  deadline = time.monotonic() + 30
  while True:
    # One read per look: the thread may be rewriting the file between two reads.
    holder = Holder.parse((tmp_path / LOCK_FILE).read_text())
    if holder is not None and holder.heartbeat != first:
      break
    assert time.monotonic() < deadline, "the heartbeat thread never refreshed the lease"
    time.sleep(0.01)
  beating.release()
  assert not (tmp_path / LOCK_FILE).exists()


@pytest.mark.parametrize(
  "path, local", [("/tmp/m", True), ("file:///tmp/m", True), ("s3://b/m", False), ("gs://b/m", False)]
)
def test_object_stores_get_a_lease(path, local):
  assert model_dir_lock.is_local(path) == local


def test_only_the_chief_locks(tmp_path):
  with model_dir_lock.hold(str(tmp_path / "worker"), chief=False) as lock:
    assert lock is None
  assert not (tmp_path / "worker").exists()
  with model_dir_lock.hold(str(tmp_path / "chief"), chief=True) as lock:
    assert isinstance(lock, FileLock)
    with pytest.raises(UserError):
      FileLock(str(tmp_path / "chief")).acquire()


def trainer(model_dir, epochs):
  args = [
    sys.executable, "-m", "deephub.train", "--variant=toy", f"--config.model.model_dir={model_dir}",
    f"--config.train.epochs={epochs}", "--config.train.steps_per_loop=100",
    "--config.train.save_checkpoint_steps=1000", "--config.train.save_summary_steps=1000",
  ]  # fmt: skip
  return subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_two_trainers_started_together_one_refuses(tmp_path):
  model_dir = str(tmp_path / "model")
  runs = [trainer(model_dir, 6000), trainer(model_dir, 6000)]  # About 15 s of training each.
  results = [(run.wait(timeout=600), run.stderr.read()) for run in runs]
  refused = [(code, err) for code, err in results if code != 0]
  finished = [(code, err) for code, err in results if code == 0]
  assert len(refused) == 1 and len(finished) == 1, [err[-1500:] for _, err in results]
  code, err = refused[0]
  assert code == 2 and "Traceback" not in err
  assert (
    err.strip()
    .splitlines()[-1]
    .startswith(f"deephub: error: model_dir {model_dir} is in use by another trainer (pid ")
  )
  assert "deephub: finished toy" in finished[0][1]
  assert tf.train.load_checkpoint(model_dir).get_tensor("global_step") == 6000


def test_stale_lock_of_a_dead_trainer_is_taken_over_by_the_cli(tmp_path):
  model_dir = tmp_path / "model"
  model_dir.mkdir()
  write_holder(model_dir / LOCK_FILE, dead_pid(), started=time.time() - 60)
  result = run_cli("--variant=toy", f"--config.model.model_dir={model_dir}", "--config.train.epochs=2")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Taking over the model_dir lock" in result.stderr and "which is gone" in result.stderr


def test_evaluate_beside_a_running_trainer(tmp_path):
  model_dir = str(tmp_path / "model")
  running = trainer(model_dir, 10**6)
  try:
    deadline = time.monotonic() + 300
    while not os.path.exists(os.path.join(model_dir, "model.ckpt-1000.index")):
      assert running.poll() is None, running.stderr.read()[-2000:]
      assert time.monotonic() < deadline, "no checkpoint 1000 in time"
      time.sleep(0.2)
    evaluated = run_cli("--variant=toy", f"--config.model.model_dir={model_dir}", "--mode=evaluate")
    assert running.poll() is None  # It ran beside the trainer, which holds the lock.
  finally:
    running.send_signal(signal.SIGTERM)  # The trainer checkpoints and stops.
    _, stderr = running.communicate(timeout=300)
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  step = int(float(evaluated.stderr.split("global_step = ")[1].split()[0].rstrip(",")))
  assert step >= 1000 and step % 1000 == 0  # A complete checkpoint, never a half-written one.
  assert running.returncode == 0, stderr[-2000:]

"""One trainer per model_dir: an exclusive lock held for the trainer's whole life.

Two trainers in one model_dir overwrite each other's checkpoints, move the
state file backwards and prune each other's files. So the chief trainer
holds `model_dir/.deephub.lock`:

- On a local (or NFS) disk, an `fcntl.flock` on it, with the holder's pid,
  host and start time written inside for the refusal message. The kernel
  drops the flock when the process dies, even on kill -9, so a lock whose
  holder is gone is taken over (with a warning naming it). A flock still held
  while the pid written inside is dead on this host (a forked child kept the
  file open) is taken over too, by replacing the file.
- On object stores (s3://, gs://), which cannot lock, a lease: the same file
  holds host, pid and a heartbeat that a background thread refreshes every
  HEARTBEAT_SECS. A second trainer refuses while the heartbeat is younger
  than LEASE_SECS. This is advisory: two trainers that start within the
  settle time of each other, or one paused longer than the lease, can still
  both write. The state-file guard in checkpoint.py then stops the one that
  would move the state file back.

Readers (evaluate, export, predict) take no lock.
"""

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import tensorflow as tf
from absl import logging

from deephub.errors import UserError
from deephub.io import remote

LOCK_FILE = ".deephub.lock"
# A lease whose heartbeat is older than this is stale: its holder is gone.
LEASE_SECS = 120.0
# How often the holder refreshes its lease; well inside LEASE_SECS, so a slow
# write or two never makes a live trainer's lease look stale.
HEARTBEAT_SECS = 30.0
# After writing a lease, wait this long and read it back: of two trainers
# that wrote at about the same time, the one whose write was overwritten refuses.
SETTLE_SECS = 2.0


@dataclasses.dataclass(frozen=True)
class Holder:
  """Who holds a model_dir: written into the lock file as JSON."""

  pid: int
  host: str
  started: float
  heartbeat: float
  token: str

  @classmethod
  def me(cls, now: float, token: str) -> "Holder":
    return cls(pid=os.getpid(), host=socket.gethostname(), started=now, heartbeat=now, token=token)

  @classmethod
  def parse(cls, text: str) -> "Holder | None":
    """The holder written in `text`, or None for an empty or unreadable file."""
    try:
      data = json.loads(text)
      return cls(
        pid=int(data["pid"]),
        host=str(data["host"]),
        started=float(data["started"]),
        heartbeat=float(data.get("heartbeat", data["started"])),
        token=str(data.get("token", "")),
      )
    except (ValueError, TypeError, KeyError, AttributeError):
      return None

  def dumps(self) -> str:
    return json.dumps(dataclasses.asdict(self))

  def describe(self) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
    return f"pid {self.pid} on host {self.host}, started {started}"


def _alive(holder: Holder) -> bool:
  """Whether `holder` (on this host) still runs; a pid reused by a newer process does not count."""
  try:
    os.kill(holder.pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # Another user's process: alive.
  started = _process_start(holder.pid)
  return started is None or started <= holder.started + 5.0  # Slack for clock granularity.


def _process_start(pid: int) -> float | None:
  """Unix start time of `pid` from /proc (Linux), or None when unknown."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as f:
      boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    return boot + ticks / os.sysconf("SC_CLK_TCK")
  except (OSError, ValueError, IndexError, StopIteration):
    return None


def _refusal(model_dir: str, holder: Holder | None, detail: str = "") -> UserError:
  who = holder.describe() if holder else "another process"
  return UserError(
    f"model_dir {model_dir} is in use by another trainer ({who}{detail}); wait for it to finish, "
    "stop it, or train into another model_dir"
  )


class FileLock:
  """An exclusive `fcntl.flock` on `model_dir/.deephub.lock` (local disks)."""

  def __init__(self, model_dir: str, *, clock: Callable[[], float] = time.time):
    self.model_dir = model_dir
    self.path = os.path.join(model_dir, LOCK_FILE)
    self._clock = clock
    self._fd: int | None = None

  def acquire(self) -> None:
    """Takes the lock, or raises a UserError naming its live holder."""
    try:
      os.makedirs(self.model_dir, exist_ok=True)
    except OSError as error:
      raise UserError(
        f"model_dir {self.model_dir}: cannot create it ({error.strerror}); use a writable folder"
      ) from None
    for _ in range(3):  # Retries only when another process replaced the file meanwhile.
      fd = self._open()
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = Holder.parse(_read_fd(fd))
        os.close(fd)
        if holder is None or holder.host != socket.gethostname() or _alive(holder):
          raise _refusal(self.model_dir, holder) from None
        logging.warning(
          "Taking over %s from %s, which is gone (a process it started still holds the file)",
          self.path,
          holder.describe(),
        )
        self._replace_file()
        continue
      except OSError:  # No flock on this filesystem: the caller falls back to a lease.
        os.close(fd)
        raise
      if os.fstat(fd).st_ino != _inode(self.path):  # Replaced after we opened it: lock the new one.
        os.close(fd)
        continue
      previous = Holder.parse(_read_fd(fd))
      if previous is not None:
        logging.warning(
          "Taking over the model_dir lock %s from %s, which is gone", self.path, previous.describe()
        )
      os.ftruncate(fd, 0)
      os.pwrite(fd, Holder.me(self._clock(), uuid.uuid4().hex).dumps().encode(), 0)
      self._fd = fd
      return
    raise _refusal(self.model_dir, None, ", replacing its lock file as we tried to take it")

  def release(self) -> None:
    """Empties the file (a clean exit leaves no holder behind) and drops the lock."""
    if self._fd is None:
      return
    try:
      os.ftruncate(self._fd, 0)
    finally:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def _open(self) -> int:
    try:
      return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
      raise UserError(
        f"model_dir {self.model_dir}: cannot create the lock file {LOCK_FILE} ({error.strerror}); "
        "make the folder writable or use another model_dir"
      ) from None

  def _replace_file(self) -> None:
    """Swaps in a fresh, unlocked lock file (a new inode) for one a stray process holds."""
    temp = f"{self.path}.{os.getpid()}_{uuid.uuid4().hex[:8]}.tmp"
    with open(temp, "w"):
      pass
    os.replace(temp, self.path)


def _read_fd(fd: int) -> str:
  return os.pread(fd, 4096, 0).decode("utf-8", errors="replace")


def _inode(path: str) -> int | None:
  try:
    return os.stat(path).st_ino
  except FileNotFoundError:
    return None


class Lease:
  """An advisory lease in `model_dir/.deephub.lock`, for object stores that cannot lock."""

  def __init__(
    self,
    model_dir: str,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    lease_secs: float = LEASE_SECS,
    heartbeat_secs: float = HEARTBEAT_SECS,
    settle_secs: float = SETTLE_SECS,
  ):
    self.model_dir = model_dir
    self.path = os.path.join(model_dir, LOCK_FILE)
    self._clock, self._sleep = clock, sleep
    self._lease_secs, self._heartbeat_secs, self._settle_secs = lease_secs, heartbeat_secs, settle_secs
    self._me: Holder | None = None
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None
    # Set when another trainer took the lease over from this one.
    self.lost = False

  def acquire(self, *, heartbeat_thread: bool = True) -> None:
    """Takes the lease, or raises a UserError naming the holder whose heartbeat is fresh."""
    holder = self._read()
    now = self._clock()
    if holder is not None:
      age = now - holder.heartbeat
      if age < self._lease_secs:
        raise _refusal(
          self.model_dir,
          holder,
          f", lease heartbeat {max(age, 0):.0f} s ago, stale after {self._lease_secs:.0f} s",
        )
      logging.warning(
        "Taking over the model_dir lease %s from %s: no heartbeat for %.0f s",
        self.path,
        holder.describe(),
        age,
      )
    self._me = Holder.me(now, uuid.uuid4().hex)
    self._write(self._me)
    self._sleep(self._settle_secs)
    current = self._read()
    if current is None or current.token != self._me.token:
      self._me = None
      raise _refusal(self.model_dir, current, ", it wrote the lease at the same time")
    if heartbeat_thread:
      self._thread = threading.Thread(target=self._beat, name="deephub-lease", daemon=True)
      self._thread.start()

  def refresh(self) -> bool:
    """Writes a new heartbeat; False (and a warning) when another trainer took the lease."""
    if self._me is None or self.lost:
      return False
    current = self._read()
    if current is None or current.token != self._me.token:
      self.lost = True
      logging.warning(
        "The model_dir lease %s was taken over by %s; two trainers may now write into %s",
        self.path,
        current.describe() if current else "another process",
        self.model_dir,
      )
      return False
    self._me = dataclasses.replace(self._me, heartbeat=self._clock())
    self._write(self._me)
    return True

  def release(self) -> None:
    """Stops the heartbeat and removes the lease if it is still this trainer's."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    if self._me is not None and not self.lost:
      current = self._read()
      if current is not None and current.token == self._me.token:
        tf.io.gfile.remove(self.path)
    self._me = None

  def _beat(self) -> None:
    while not self._stop.wait(self._heartbeat_secs):
      try:
        if not self.refresh():
          return
      except tf.errors.OpError as error:  # A failed write is retried on the next beat.
        logging.warning("Could not refresh the model_dir lease %s: %s", self.path, error.message[:200])

  def _read(self) -> Holder | None:
    try:
      with tf.io.gfile.GFile(self.path, "r") as f:
        return Holder.parse(f.read(4096))
    except tf.errors.NotFoundError:
      return None

  def _write(self, holder: Holder) -> None:
    tf.io.gfile.makedirs(self.model_dir)
    with tf.io.gfile.GFile(self.path, "w") as f:
      f.write(holder.dumps())


def is_local(model_dir: str) -> bool:
  """Whether model_dir is on a filesystem the OS can flock (no scheme, or file://)."""
  return remote.scheme(model_dir) in ("", "file")


@contextlib.contextmanager
def hold(model_dir: str, *, chief: bool) -> Iterator[FileLock | Lease | None]:
  """Holds the model_dir lock around a trainer's life; only the chief of a run takes it.

  Raises:
    UserError: another trainer holds model_dir.
  """
  if not chief:  # Other workers write nothing into model_dir.
    yield None
    return
  lock: FileLock | Lease
  if is_local(model_dir):
    local_dir = model_dir[len("file://") :] if model_dir.startswith("file://") else model_dir
    lock = FileLock(local_dir)
    try:
      lock.acquire()
    except OSError as error:
      if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
        raise
      logging.warning("%s cannot flock (%s); using a heartbeat lease instead", model_dir, error.strerror)
      lock = Lease(local_dir)
      lock.acquire()
  else:
    lock = Lease(model_dir)
    lock.acquire()
  try:
    yield lock
  finally:
    lock.release()

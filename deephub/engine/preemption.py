"""Preemption and Ctrl-C: SIGTERM or a first SIGINT ends work cleanly at the next loop boundary.

Cluster schedulers (Kubernetes, Slurm, cloud preemptible VMs) send SIGTERM
and wait a grace period before SIGKILL; a user at a terminal presses Ctrl-C
(SIGINT). While a `handles_sigterm` function runs, either signal records a
flag instead of killing the process; the outer loop asks `stop_requested`
after each compiled loop (and evaluation between chunks of batches), then
writes a checkpoint and returns, so a rerun of the same command resumes from
that checkpoint. A second SIGINT ends the process at once, for the user who
does not want to wait for the checkpoint.

Python runs signal handlers only between bytecodes of the main thread, so
while a compiled loop runs they wait for it to end. The C-level handler
also writes each signal's number to the wakeup fd at once; a watcher thread
reads it, so the first signal is acknowledged and a second Ctrl-C acts
immediately, even in the middle of a long loop.
"""

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable

import tensorflow as tf
from absl import logging

# The signals that request a clean stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# Set by the handler; signals are process-wide, so this state is too.
_requested = threading.Event()
# True while a `handles_sigterm` function runs.
_watching = threading.Event()
# The first signal received while watching.
_received: list[int] = []
# Held while recording it: the watcher thread and the Python handler both may.
_receiving = threading.RLock()


def handles_sigterm(function: Callable) -> Callable:
  """Decorator: while `function` runs, SIGTERM and a first SIGINT set a flag instead of terminating.

  The previous handlers are restored afterwards, also when `function` raises.
  Outside the main thread (where Python cannot install handlers) it does nothing.
  """

  @functools.wraps(function)
  def wrapper(*args, **kwargs):
    if threading.current_thread() is not threading.main_thread():
      return function(*args, **kwargs)
    _requested.clear()
    _received.clear()
    previous = {signum: signal.signal(signum, _record) for signum in STOP_SIGNALS}
    watcher = _Watcher()
    _watching.set()
    try:
      return function(*args, **kwargs)
    finally:
      _watching.clear()
      watcher.stop()
      for signum, handler in previous.items():
        signal.signal(signum, handler)
      _requested.clear()
      _received.clear()

  return wrapper


def reclaim_sigterm() -> None:
  """Reinstalls our handler if something replaced it while a decorated function runs.

  TensorFlow's multi-worker runtime installs its own SIGTERM notifier in C++
  when it starts, silently replacing Python's handler; call this after it.
  """
  if _watching.is_set() and threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _record)


def requested() -> bool:
  """Whether this process received a stop signal; for work only this process does (evaluation)."""
  return _requested.is_set()


def received_signal() -> int:
  """The first stop signal this process received (SIGTERM when none was)."""
  return _received[0] if _received else signal.SIGTERM


def _record(signum, frame) -> None:
  """The Python-level handler: keeps the default action (exit) from happening; the watcher did the rest."""
  del frame
  _received_now(signum)


def _received_now(signum: int) -> None:
  """Records the first stop signal once, whether the watcher or the Python handler sees it first."""
  with _receiving:
    if _requested.is_set():
      return
    _received.append(signum)
    _requested.set()
  then = "press Ctrl-C again to abort at once without one" if signum == signal.SIGINT else "rerun to continue"
  logging.warning(
    "Received %s: stopping after the current loop with a checkpoint; %s", signal.Signals(signum).name, then
  )


class _Watcher:
  """Reads the signal wakeup fd in a thread: acknowledges a stop signal at once, aborts on a second SIGINT."""

  def __init__(self):
    self._read, self._write = os.pipe()
    os.set_blocking(self._write, False)  # The C handler must never block.
    self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
    self._thread = threading.Thread(target=self._watch, name="deephub-signals", daemon=True)
    self._thread.start()

  def _watch(self) -> None:
    interrupts = 0
    while data := os.read(self._read, 64):  # Empty once stop() closed the write end.
      for signum in data:
        if signum not in STOP_SIGNALS:
          continue
        interrupts += signum == signal.SIGINT
        if interrupts >= 2:
          print(
            "deephub: aborted by a second Ctrl-C without writing a checkpoint; rerun the same command to "
            "continue from the last one",
            file=sys.stderr,
            flush=True,
          )
          os._exit(128 + signal.SIGINT)  # Now, not after the compiled loop: that is the point of it.
        _received_now(signum)

  def stop(self) -> None:
    signal.set_wakeup_fd(self._previous)
    os.close(self._write)
    self._thread.join(timeout=10)
    os.close(self._read)


def stop_requested(strategy: tf.distribute.Strategy, num_workers: int) -> bool:
  """Whether any worker received a stop signal; every worker must call it at the same step.

  With several workers the flags are all-reduced (one scalar per loop), so
  all stop after the same loop: a worker that stopped alone would leave the
  others blocked in their next all-reduce.
  """
  return any_worker(strategy, num_workers, _requested.is_set())


def any_worker(strategy: tf.distribute.Strategy, num_workers: int, local: bool) -> bool:
  """True on every worker when `local` is True on any; all workers must call it together."""
  if num_workers <= 1:
    return local
  flags = strategy.run(lambda: tf.constant(int(local)))
  return int(strategy.reduce(tf.distribute.ReduceOp.SUM, flags, axis=None)) > 0

"""Preemption: SIGTERM ends training cleanly at the next loop boundary.

Cluster schedulers (Kubernetes, Slurm, cloud preemptible VMs) send SIGTERM
and wait a grace period before SIGKILL. `handles_sigterm` records the signal
instead of dying; the outer loop asks `stop_requested` after each compiled
loop, then writes a checkpoint and returns, so the process exits 0 and a
rerun of the same command resumes from that checkpoint.
"""

import functools
import signal
import threading
from collections.abc import Callable

import tensorflow as tf
from absl import logging

# Set by the handler; signals are process-wide, so this state is too.
_requested = threading.Event()
# True while a `handles_sigterm` function runs.
_watching = threading.Event()
# Set when the last decorated run stopped early for SIGTERM; read after it returns.
_stopped = threading.Event()


def handles_sigterm(function: Callable) -> Callable:
  """Decorator: while `function` runs, SIGTERM sets a flag instead of terminating.

  The previous handler is restored afterwards, also when `function` raises.
  Outside the main thread (where Python cannot install handlers) it does nothing.
  """

  @functools.wraps(function)
  def wrapper(*args, **kwargs):
    if threading.current_thread() is not threading.main_thread():
      return function(*args, **kwargs)
    _requested.clear()
    _stopped.clear()
    previous = signal.signal(signal.SIGTERM, _record)
    _watching.set()
    try:
      return function(*args, **kwargs)
    finally:
      _watching.clear()
      signal.signal(signal.SIGTERM, previous)
      _requested.clear()

  return wrapper


def reclaim_sigterm() -> None:
  """Reinstalls our handler if something replaced it while a decorated function runs.

  TensorFlow's multi-worker runtime installs its own SIGTERM notifier in C++
  when it starts, silently replacing Python's handler; call this after it.
  """
  if _watching.is_set() and threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _record)


def mark_stopped() -> None:
  """Records that training stopped early for SIGTERM (see `stopped_early`)."""
  _stopped.set()


def stopped_early() -> bool:
  """Whether the last `handles_sigterm` run stopped early for SIGTERM, leaving work to a rerun."""
  return _stopped.is_set()


def _record(signum, frame) -> None:
  del frame
  logging.warning("Received signal %d: stopping after the current loop with a checkpoint", signum)
  _requested.set()


def stop_requested(strategy: tf.distribute.Strategy, num_workers: int) -> bool:
  """Whether any worker received SIGTERM; every worker must call it at the same step.

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

"""Which devices train: the tf.distribute strategy and the chief's role.

`runtime.strategy`, `runtime.gpus` and the `TF_CONFIG` environment variable
(the cluster spec that TensorFlow's MultiWorkerMirroredStrategy reads) become
one `Placement`. Everything else in the engine runs under its strategy and
asks it whether this process is the chief, the only one that writes files.
"""

import dataclasses
import json
import os

import tensorflow as tf
from absl import logging

from deephub.engine import preemption
from deephub.engine.summaries import ScalarWriter
from deephub.errors import UserError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored")


@dataclasses.dataclass(frozen=True)
class Cluster:
  """This process's place in `TF_CONFIG` (one local worker when it is unset)."""

  num_workers: int = 1
  task_type: str = "worker"
  task_id: int = 0

  @property
  def is_chief(self) -> bool:
    """The 'chief' task, or worker 0 when the cluster names no chief (TF's rule)."""
    return self.task_type == "chief" or (self.task_type == "worker" and self.task_id == 0)


@dataclasses.dataclass(frozen=True)
class Placement:
  """The strategy to train under and this process's role in it."""

  strategy: tf.distribute.Strategy
  cluster: Cluster
  # Whether the per-replica step may be XLA-compiled (see `make_placement`).
  xla_ok: bool

  @property
  def is_chief(self) -> bool:
    return self.cluster.is_chief


def parse_cluster(tf_config: str | None) -> Cluster:
  """Reads the worker count and this task from a `TF_CONFIG` JSON string.

  Raises:
    UserError: TF_CONFIG is not JSON or lacks `cluster` / `task`.
  """
  if not tf_config:
    return Cluster()
  try:
    spec = json.loads(tf_config)
    cluster, task = spec.get("cluster", {}), spec["task"]
    task_type, task_id = task["type"], int(task["index"])
  except (ValueError, KeyError, TypeError, AttributeError) as error:
    raise UserError(
      f"TF_CONFIG is not a cluster spec ({error}); set it to "
      '\'{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}\''
    ) from None
  workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
  return Cluster(num_workers=max(workers, 1), task_type=task_type, task_id=task_id)


def parse_gpus(gpus: str) -> list[int] | str:
  """`''` -> [] (CPU), `'all'` -> 'all', `'0,2'` -> [0, 2].

  Raises:
    UserError: anything else.
  """
  text = gpus.replace(" ", "")
  if text in ("", "all"):
    return [] if not text else "all"
  try:
    indices = [int(part) for part in text.split(",")]
  except ValueError:
    indices = [-1]
  if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
    raise UserError(f"runtime.gpus is {gpus!r}; use '' (CPU), 'all', or distinct GPU indices like '0,1'")
  return indices


def choose_strategy(strategy: str, *, num_workers: int, num_devices: int) -> str:
  """Resolves `runtime.strategy` 'auto' to a concrete strategy name.

  Args:
    strategy: one of STRATEGIES.
    num_workers: workers named by TF_CONFIG (1 without it).
    num_devices: local devices selected by `runtime.gpus` (the CPU counts as 1).

  Raises:
    UserError: unknown name, or one_device/mirrored while TF_CONFIG names a cluster.
  """
  if strategy not in STRATEGIES:
    raise UserError(f"runtime.strategy is {strategy!r}; use one of {', '.join(STRATEGIES)}")
  if strategy == "auto":
    if num_workers > 1:
      return "multi_worker_mirrored"
    return "mirrored" if num_devices > 1 else "one_device"
  if num_workers > 1 and strategy != "multi_worker_mirrored":
    # Each worker would train alone and all would write the same model_dir.
    raise UserError(
      f"runtime.strategy is {strategy!r} but TF_CONFIG names {num_workers} workers; "
      "use 'auto' or 'multi_worker_mirrored', or unset TF_CONFIG"
    )
  return strategy


def make_placement(runtime) -> Placement:
  """Builds the strategy for the `runtime` config section.

  Call this before any other TensorFlow op: MultiWorkerMirroredStrategy
  configures the TensorFlow runtime for the cluster and must come first.

  Raises:
    UserError: invalid `runtime.strategy` / `runtime.gpus` / TF_CONFIG.
  """
  cluster = parse_cluster(os.environ.get("TF_CONFIG"))
  gpus = parse_gpus(runtime.gpus)
  # Only count devices when MultiWorkerMirroredStrategy is out of the
  # question: listing them starts the TensorFlow runtime, which that strategy
  # must configure first.
  multi_worker = cluster.num_workers > 1 or runtime.strategy == "multi_worker_mirrored"
  wanted = 1 if multi_worker else len(_local_devices(gpus, runtime.strategy))
  name = choose_strategy(runtime.strategy, num_workers=cluster.num_workers, num_devices=wanted)
  if name == "multi_worker_mirrored":
    if gpus:
      _make_only_visible(gpus)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    # Starting the cluster runtime installs TensorFlow's own SIGTERM notifier
    # (in C++), which would swallow the signal our preemption handling needs.
    tf.config.list_logical_devices()  # Starts it now, so the reclaim comes after.
    preemption.reclaim_sigterm()
    # XLA clusters cannot contain the cross-worker collectives on CPU.
    xla_ok = bool(gpus) or strategy.num_replicas_in_sync == 1
  else:
    devices = _local_devices(gpus, name)
    if name == "one_device" and devices[0] == _default_device():
      # TensorFlow's default (no-op) strategy already places everything on
      # this device and costs nothing per step, where OneDeviceStrategy's
      # distributed iterator slowed the toy's steps by about 30%.
      strategy = tf.distribute.get_strategy()
    elif name == "one_device":
      strategy = tf.distribute.OneDeviceStrategy(devices[0])
    else:
      strategy = tf.distribute.MirroredStrategy(devices)
    # XLA compiles a step for one CPU device only; replicas on logical CPU
    # devices (tests, CPU machines) run the step uncompiled.
    xla_ok = len(devices) == 1 or all("GPU" in d.upper() for d in devices)
  logging.info(
    "Strategy %s: %d replica(s), worker %s:%d of %d%s",
    name,
    strategy.num_replicas_in_sync,
    cluster.task_type,
    cluster.task_id,
    cluster.num_workers,
    " (chief)" if cluster.is_chief else "",
  )
  return Placement(strategy=strategy, cluster=cluster, xla_ok=xla_ok)


def chief_writer(placement: Placement, logdir: str):
  """A ScalarWriter on the chief; elsewhere a writer that writes nothing.

  Only the chief writes into model_dir: other workers hold the same values
  (mirrored variables, all-reduced losses), and two writers would race.
  """
  return ScalarWriter(logdir) if placement.is_chief else _NoWriter()


class _NoWriter:
  """ScalarWriter's interface for non-chief workers; creates no file."""

  def write_scalars(self, step, scalars) -> None:
    del step, scalars

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


def _local_devices(gpus: list[int] | str, strategy: str) -> list[str]:
  """Device names for `runtime.gpus`; without GPUs, the CPU (every logical CPU when mirrored)."""
  if not gpus:
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    # 'mirrored' on CPU spans every logical CPU device: this is how it is
    # tested without GPUs (tf.config.set_logical_device_configuration).
    return cpus if strategy == "mirrored" else cpus[:1]
  visible = [d.name for d in tf.config.list_logical_devices("GPU")]
  if not visible:
    asked = gpus if gpus == "all" else ",".join(map(str, gpus))
    raise UserError(f"runtime.gpus is {asked!r} but TensorFlow sees no GPU; set it to '' to train on the CPU")
  if gpus == "all":
    return visible
  missing = [i for i in gpus if i >= len(visible)]
  if missing:
    raise UserError(
      f"runtime.gpus asks for GPU {missing[0]} but TensorFlow sees {len(visible)} GPU(s); "
      f"use indices below {len(visible)} or '' for the CPU"
    )
  return [visible[i] for i in gpus]


def _default_device() -> str:
  """Where TensorFlow places ops without a strategy: the first GPU, else the first CPU."""
  gpus = tf.config.list_logical_devices("GPU")
  return (gpus or tf.config.list_logical_devices("CPU"))[0].name


def _make_only_visible(gpus: list[int] | str) -> None:
  """Restricts this process to the selected GPUs (MultiWorkerMirrored uses all visible ones)."""
  if gpus == "all":
    return
  physical = tf.config.list_physical_devices("GPU")
  missing = [i for i in gpus if i >= len(physical)]
  if missing:
    raise UserError(
      f"runtime.gpus asks for GPU {missing[0]} but this machine has {len(physical)}; "
      f"use indices below {len(physical)} or '' for the CPU"
    )
  tf.config.set_visible_devices([physical[i] for i in gpus], "GPU")

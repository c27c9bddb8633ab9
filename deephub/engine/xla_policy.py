"""Whether the train step is compiled with XLA on this machine.

`runtime.xla` asks for XLA. On GPUs and TPUs it is used as asked; on a
machine with CPUs only it is used only when `runtime.xla_on_cpu` is also
True, because there TensorFlow's own kernels measured faster
(benchmarks/README.md, 2-core CPU): XLA's per-call launch cost dominates small
models' steps (toy model: XLA off runs 1.5-1.65x the steps/s of XLA on at
batch 10, 0.94-1.11x at batch 256) and its CPU matrix products gain nothing
over the oneDNN ones (3x1024 MLP at batch 1024: XLA off 1.06-1.12x).
Compilation also adds to the time to the first step.
"""

from collections.abc import Sequence

import ml_collections
import tensorflow as tf
from absl import logging

_ACCELERATORS = ("GPU", "TPU")


def accelerator_types() -> list[str]:
  """Device types of this process's accelerators ('GPU', 'TPU'), empty on a CPU-only machine."""
  return sorted({device.device_type for device in tf.config.list_logical_devices()} & set(_ACCELERATORS))


def use_xla(runtime: ml_collections.ConfigDict, *, accelerators: Sequence[str] | None = None) -> bool:
  """Returns whether to jit-compile the train step.

  Args:
    runtime: the config's `runtime` section (`xla`, `xla_on_cpu`).
    accelerators: accelerator device types present; found with
      `accelerator_types()` when None (tests pass them in).
  """
  if not runtime.xla:
    return False
  accelerators = accelerator_types() if accelerators is None else list(accelerators)
  if accelerators or runtime.xla_on_cpu:
    return True
  logging.info("XLA off: no GPU or TPU, and runtime.xla_on_cpu is False (faster on CPU; see benchmarks)")
  return False

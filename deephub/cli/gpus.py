"""`-g/--gpu-device-id`: which GPUs TensorFlow may see, set before it is imported.

TensorFlow reads `CUDA_VISIBLE_DEVICES` once, when it initialises CUDA, so
the variable must be set before the first `import tensorflow`. `-g -1`
selects every GPU that `nvidia-smi` reports without a compute process.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

from absl import logging

from deephub.errors import UserError

Runner = Callable[[list[str]], str]


def _nvidia_smi(args: list[str]) -> str:
  """Runs nvidia-smi and returns its stdout."""
  if shutil.which("nvidia-smi") is None:
    raise UserError(
      "-g -1 picks idle GPUs with nvidia-smi, which is not on PATH; install the NVIDIA driver "
      "tools or pass device ids (-g 0 -g 1)"
    )
  try:
    return subprocess.run(["nvidia-smi", *args], check=True, capture_output=True, text=True).stdout
  except subprocess.CalledProcessError as error:
    raise UserError(
      f"nvidia-smi failed ({' '.join(error.stderr.split()) or error}); pass device ids (-g 0)"
    ) from None


def idle_gpus(run: Runner = _nvidia_smi) -> list[int]:
  """Indices of the GPUs that run no compute process."""
  gpus = [line.split(",") for line in run(["--query-gpu=index,uuid", "--format=csv,noheader"]).splitlines()]
  busy = {
    line.strip() for line in run(["--query-compute-apps=gpu_uuid", "--format=csv,noheader"]).splitlines()
  }
  return [
    int(index) for index, uuid in (map(str.strip, gpu) for gpu in gpus if len(gpu) == 2) if uuid not in busy
  ]


def visible_devices(device_ids: Sequence[int], run: Runner = _nvidia_smi) -> str:
  """Returns the `CUDA_VISIBLE_DEVICES` value for the `-g` ids.

  Raises:
    UserError: -1 mixed with ids, a negative id, or no idle GPU.
  """
  if -1 in device_ids:
    if len(device_ids) > 1:
      raise UserError(
        f"-g -1 picks idle GPUs by itself; drop the other ids {[i for i in device_ids if i != -1]}"
      )
    idle = idle_gpus(run)
    if not idle:
      raise UserError("-g -1 found no idle GPU (every one runs a compute process); pass device ids (-g 0)")
    device_ids = idle
  bad = [i for i in device_ids if i < 0]
  if bad:
    raise UserError(f"-g {bad[0]} is not a device id; use 0, 1, ... or -1 for idle GPUs")
  return ",".join(str(i) for i in device_ids)


def set_visible_devices(device_ids: Sequence[int] | None, run: Runner = _nvidia_smi) -> None:
  """Sets `CUDA_VISIBLE_DEVICES` from `-g` (nothing when -g was not given)."""
  if not device_ids:
    return
  value = visible_devices(device_ids, run)
  if "tensorflow" in sys.modules:
    logging.warning("TensorFlow is already imported; CUDA_VISIBLE_DEVICES may be ignored")
  os.environ["CUDA_VISIBLE_DEVICES"] = value
  logging.info("CUDA_VISIBLE_DEVICES=%s", os.environ["CUDA_VISIBLE_DEVICES"])

"""-g/--gpu-device-id: ids, idle-GPU selection through nvidia-smi, and its absence."""

import os

import pytest

from deephub.cli import gpus
from deephub.errors import UserError

SMI = {
  "--query-gpu=index,uuid": "0, GPU-aaa\n1, GPU-bbb\n2, GPU-ccc\n",
  "--query-compute-apps=gpu_uuid": "GPU-bbb\nGPU-bbb\n",
}


def fake_smi(outputs):
  return lambda args: outputs[args[0]]


@pytest.mark.parametrize(
  "ids, outputs, expected",
  [
    ([0], SMI, "0"),
    ([1, 3], SMI, "1,3"),
    ([-1], SMI, "0,2"),
    ([-1], {**SMI, "--query-compute-apps=gpu_uuid": ""}, "0,1,2"),
  ],
)
def test_visible_devices(ids, outputs, expected):
  assert gpus.visible_devices(ids, fake_smi(outputs)) == expected


@pytest.mark.parametrize(
  "ids, outputs, message",
  [
    ([-1], {**SMI, "--query-compute-apps=gpu_uuid": "GPU-aaa\nGPU-bbb\nGPU-ccc\n"}, r"found no idle GPU"),
    ([-1, 0], SMI, r"-g -1 picks idle GPUs by itself; drop the other ids \[0\]"),
    ([-2], SMI, r"-g -2 is not a device id"),
  ],
)
def test_visible_devices_errors(ids, outputs, message):
  with pytest.raises(UserError, match=message):
    gpus.visible_devices(ids, fake_smi(outputs))


def test_missing_nvidia_smi_is_a_clear_error(monkeypatch, tmp_path):
  monkeypatch.setenv("PATH", str(tmp_path))
  with pytest.raises(UserError, match=r"nvidia-smi, which is not on PATH; .* pass device ids \(-g 0 -g 1\)"):
    gpus.visible_devices([-1])


def test_real_nvidia_smi_call_through_path(monkeypatch, tmp_path):
  script = tmp_path / "nvidia-smi"
  script.write_text(
    '#!/bin/sh\ncase "$1" in\n'
    '  --query-gpu=*) printf "0, GPU-x\\n1, GPU-y\\n";;\n'
    '  *) printf "GPU-x\\n";;\nesac\n'
  )
  script.chmod(0o755)
  monkeypatch.setenv("PATH", str(tmp_path))
  monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
  gpus.set_visible_devices([-1])
  assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"


def test_no_flag_leaves_the_environment(monkeypatch):
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
  gpus.set_visible_devices(None)
  assert os.environ["CUDA_VISIBLE_DEVICES"] == "7"

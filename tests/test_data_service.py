"""`python -m deephub.data_service`: a real service process that a toy run trains through."""

import os
import re
import subprocess
import sys

import tensorflow as tf

from tests.conftest import REPO, run_cli


def _data_service(*args) -> subprocess.Popen:
  return subprocess.Popen(
    [sys.executable, "-m", "deephub.data_service", *args],
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": REPO},
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def test_toy_trains_through_a_started_service(tmp_path):
  server = _data_service("--port=0", "--worker_host=127.0.0.1")
  try:
    banner = server.stdout.readline()  # Printed once the dispatcher and worker serve.
    address = re.search(r"--config.runtime.data_service=(grpc://127.0.0.1:\d+)", banner).group(1)
    model_dir = str(tmp_path / "model")
    run = run_cli(
      "--variant=toy", f"--config.model.model_dir={model_dir}", f"--config.runtime.data_service={address}"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert server.poll() is None  # Still serving.
  finally:
    server.kill()
    server.wait()
  assert tf.train.load_checkpoint(model_dir).get_tensor("global_step") == 10


def test_workers_without_a_count_is_a_one_line_error():
  server = _data_service("--dispatcher_address=127.0.0.1:1", "--workers=0")
  _, stderr = server.communicate(timeout=120)
  assert server.returncode == 2
  assert stderr.strip() == (
    "deephub: error: --workers is 0; start 1 or more workers for --dispatcher_address"
  )

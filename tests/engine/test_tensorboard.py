"""A real TensorBoard server reads a trained model_dir: `loss` in run `.`, `accuracy` in run `eval`."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from deephub.engine import train_and_evaluate


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _scalars(port: int, run: str, tag: str):
  query = urllib.parse.urlencode({"run": run, "tag": tag})
  url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?{query}"
  with urllib.request.urlopen(url, timeout=10) as response:
    return json.load(response)  # [[wall_time, step, value], ...]


def _wait_for_scalars(server, port: int, run: str, tag: str, count: int, timeout_secs: float = 120):
  """Polls until TensorBoard has loaded `count` points (it loads event files in the background)."""
  deadline = time.monotonic() + timeout_secs
  while True:
    assert server.poll() is None, f"tensorboard exited: {server.stderr.read()[-2000:]}"
    try:
      points = _scalars(port, run, tag)
      if len(points) >= count:
        return points
    except (urllib.error.URLError, ConnectionError):
      pass  # Not listening yet, or the run is not loaded yet (HTTP 400).
    if time.monotonic() > deadline:
      pytest.fail(f"tensorboard served no {tag!r} for run {run!r} within {timeout_secs}s")
    time.sleep(0.5)


def test_tensorboard_serves_train_and_eval_scalars(toy_config):
  results = train_and_evaluate(toy_config)
  port = _free_port()
  tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
  server = subprocess.Popen(
    [tensorboard, "--logdir", toy_config.model.model_dir, "--host", "127.0.0.1", "--port", str(port),
     "--reload_interval", "1"],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
  )  # fmt: skip
  try:
    loss = _wait_for_scalars(server, port, ".", "loss", 10)
    accuracy = _wait_for_scalars(server, port, "eval", "accuracy", 1)
  finally:
    server.terminate()
    server.wait(timeout=30)
  assert [step for _, step, _ in loss] == list(range(1, 11))
  assert [(step, value) for _, step, value in accuracy] == [(10, pytest.approx(results["accuracy"]))]

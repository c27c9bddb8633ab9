"""Shared fixtures: a shrunken toy config and a runner for the real CLI."""

import os
import subprocess
import sys

import pytest

from deephub.config import variants

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def toy_config(tmp_path):
  """The shipped toy variant, training into a temp model_dir."""
  config = variants.load_variant("toy")
  config.model.model_dir = str(tmp_path / "model")
  return config


@pytest.fixture(params=["native", "fallback"])
def native_ops(request, monkeypatch):
  """Runs a test with the native TFRecord ops, then again with DEEPHUB_NATIVE_OPS=0 (the fallback).

  Child processes inherit the setting through the environment.
  """
  from deephub.ops import loader

  if request.param == "native":
    monkeypatch.delenv(loader.DISABLE_VARIABLE, raising=False)
  else:
    monkeypatch.setenv(loader.DISABLE_VARIABLE, "0")
  loader.reset()
  # The native run must really use the ops: a failed build fails it, not skips it.
  assert (loader.load() is not None) == (request.param == "native"), loader.status().describe()
  yield request.param
  loader.reset()


def run_cli(*args, cwd=None, env=None, timeout=300):
  """Runs `python -m deephub.train ARGS` in a child process; returns the CompletedProcess."""
  child_env = {**os.environ, "PYTHONPATH": REPO, **(env or {})}
  return subprocess.run(
    [sys.executable, "-m", "deephub.train", *args],
    cwd=cwd or REPO,
    env=child_env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def read_scalars(logdir):
  """Returns {tag: {step: simple_value}} from the event files directly in `logdir`."""
  import glob

  import tensorflow as tf

  scalars = {}
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        assert value.WhichOneof("value") == "simple_value", f"{value.tag} is not a simple_value"
        scalars.setdefault(value.tag, {})[event.step] = value.simple_value
  return scalars

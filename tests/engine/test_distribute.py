"""Strategy choice (table-driven) and real multi-replica / multi-worker training.

The end-to-end tests run in child processes: logical CPU devices and
MultiWorkerMirroredStrategy must be configured before TensorFlow starts.
"""

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine.distribute import Cluster, choose_strategy, parse_cluster, parse_gpus
from deephub.errors import UserError
from tests.conftest import REPO, read_scalars


@pytest.mark.parametrize(
  "strategy, workers, devices, expected",
  [
    ("auto", 1, 1, "one_device"),
    ("auto", 1, 2, "mirrored"),
    ("auto", 2, 1, "multi_worker_mirrored"),
    ("auto", 3, 4, "multi_worker_mirrored"),
    ("one_device", 1, 4, "one_device"),
    ("mirrored", 1, 1, "mirrored"),
    ("multi_worker_mirrored", 1, 1, "multi_worker_mirrored"),
  ],
)
def test_choose_strategy(strategy, workers, devices, expected):
  assert choose_strategy(strategy, num_workers=workers, num_devices=devices) == expected


@pytest.mark.parametrize(
  "strategy, workers, match",
  [("mirored", 1, "use one of auto, one_device"), ("mirrored", 2, "TF_CONFIG names 2 workers")],
)
def test_choose_strategy_errors(strategy, workers, match):
  with pytest.raises(UserError, match=match):
    choose_strategy(strategy, num_workers=workers, num_devices=1)


def _tf_config(cluster: dict, task_type: str, index: int) -> str:
  return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize(
  "tf_config, expected",
  [
    (None, Cluster()),
    ("", Cluster()),
    (_tf_config({"worker": ["a:1", "b:2"]}, "worker", 1), Cluster(2, "worker", 1)),
    (_tf_config({"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "chief", 0), Cluster(3, "chief", 0)),
  ],
)
def test_parse_cluster(tf_config, expected):
  assert parse_cluster(tf_config) == expected


@pytest.mark.parametrize(
  "cluster, chief",
  [(Cluster(2, "worker", 0), True), (Cluster(2, "worker", 1), False), (Cluster(2, "chief", 0), True)],
)
def test_chief_is_worker_zero_or_the_chief_task(cluster, chief):
  assert cluster.is_chief == chief


@pytest.mark.parametrize("tf_config", ["{not json", '{"cluster": {}}', '{"task": {"type": "worker"}}'])
def test_bad_tf_config_names_the_fix(tf_config):
  with pytest.raises(UserError, match="TF_CONFIG is not a cluster spec"):
    parse_cluster(tf_config)


@pytest.mark.parametrize("gpus, expected", [("", []), ("all", "all"), ("0", [0]), ("0, 2", [0, 2])])
def test_parse_gpus(gpus, expected):
  assert parse_gpus(gpus) == expected


@pytest.mark.parametrize("gpus", ["x", "-1", "0,0", "1;2"])
def test_parse_gpus_errors(gpus):
  with pytest.raises(UserError, match="runtime.gpus is"):
    parse_gpus(gpus)


@pytest.mark.parametrize("gpus", ["0", "all"])
def test_gpus_on_a_machine_without_gpus(toy_config, gpus):
  from deephub.engine import train_and_evaluate

  toy_config.runtime.gpus = gpus
  with pytest.raises(UserError, match=f"runtime.gpus is '{gpus}' but TensorFlow sees no GPU; set it to ''"):
    train_and_evaluate(toy_config)


_TWO_CPUS = """
import sys
import tensorflow as tf
from absl import logging
logging.set_verbosity(logging.INFO)
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from deephub.config import variants
from deephub.engine import train_and_evaluate
for strategy, model_dir in (("mirrored", sys.argv[1]), ("one_device", sys.argv[2])):
  config = variants.load_variant("toy")
  config.model.model_dir = model_dir
  config.train.epochs = 4
  config.train.steps_per_loop = 2
  config.train.save_summary_steps = int(sys.argv[3])
  config.runtime.strategy = strategy
  # Replicas on logical CPUs run uncompiled; so does the reference, because
  # Adam magnifies XLA's different rounding on near-zero gradients.
  config.runtime.xla = False
  train_and_evaluate(config)
"""


# 1: summaries every step; 3: the summary cond inside each replica's step.
@pytest.mark.parametrize("summary_steps", [1, 3])
def test_mirrored_on_two_cpus_equals_one_device(tmp_path, summary_steps):
  mirrored, single = str(tmp_path / "mirrored"), str(tmp_path / "single")
  child = subprocess.run(
    [sys.executable, "-c", _TWO_CPUS, mirrored, single, str(summary_steps)],
    env={**os.environ, "PYTHONPATH": REPO},
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert child.returncode == 0, child.stderr[-3000:]
  assert "Strategy mirrored: 2 replica(s)" in child.stderr
  assert "Strategy one_device: 1 replica(s)" in child.stderr
  a, b = tf.train.load_checkpoint(mirrored), tf.train.load_checkpoint(single)
  assert set(a.get_variable_to_shape_map()) == set(b.get_variable_to_shape_map())
  assert a.get_tensor("global_step") == b.get_tensor("global_step") == 4
  for key in a.get_variable_to_shape_map():
    np.testing.assert_allclose(a.get_tensor(key), b.get_tensor(key), rtol=1e-5, atol=1e-7, err_msg=key)
  # The loss is the mean over the global batch of 10, not over one replica's 5.
  summaries_a, summaries_b = read_scalars(mirrored), read_scalars(single)
  due = [step for step in range(1, 5) if step % summary_steps == 0]
  for name in ("loss", "training_accuracy", "learning_rate"):
    values_a, values_b = summaries_a[name], summaries_b[name]
    assert sorted(values_a) == sorted(values_b) == due, name
    assert np.all(np.isfinite([values_a[s] for s in due])), name
    if name == "training_accuracy":
      # Not compared: the toy's logits are near-ties, and an argmax flips on rounding.
      assert all(0.0 <= values_a[s] <= 1.0 for s in due)
      continue
    np.testing.assert_allclose(
      [values_a[s] for s in due], [values_b[s] for s in due], rtol=1e-5, err_msg=name
    )
  assert not np.allclose(a.get_tensor("toy/w1"), 0.01)


def _free_ports(n: int) -> list[int]:
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _start_workers(model_dir: str, *args: str) -> list[subprocess.Popen]:
  """Starts two `deephub.train` workers on 127.0.0.1 with TF_CONFIG; worker 0 is the chief.

  Their stderr goes to files (`child.log_path`), not pipes: a worker blocked on
  a full pipe would block the other in the next all-reduce.
  """
  workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
  children = []
  for index in range(2):
    tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    log_path = f"{model_dir}.worker{index}.log"
    with open(log_path, "w") as log:
      child = subprocess.Popen(
        [
          sys.executable,
          "-m",
          "deephub.train",
          "--variant=toy",
          f"--config.model.model_dir={model_dir}",
          *args,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO, "TF_CONFIG": json.dumps(tf_config)},
        stdout=subprocess.DEVNULL,
        stderr=log,
      )
    child.log_path = log_path
    children.append(child)
  return children


def _wait(children: list[subprocess.Popen]) -> list[str]:
  """Waits for every child to exit 0; returns their stderr."""
  try:
    for child in children:
      child.wait(timeout=600)
  finally:
    for child in children:
      child.kill()
  outputs = [open(child.log_path).read() for child in children]
  for child, stderr in zip(children, outputs, strict=True):
    assert child.returncode == 0, stderr[-3000:]
  return outputs


def test_two_workers_train_with_multi_worker_mirrored(tmp_path):
  model_dir = str(tmp_path / "model")
  children = _start_workers(model_dir, "--config.train.epochs=3")
  outputs = _wait(children)
  assert "Strategy multi_worker_mirrored: 2 replica(s), worker worker:0 of 2 (chief)" in outputs[0]
  assert "worker worker:1 of 2" in outputs[1] and "(chief)" not in outputs[1]

  reader = tf.train.load_checkpoint(model_dir)
  assert reader.get_tensor("global_step") == 3
  assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-3")
  # Every file comes from the chief: event file names end in <host>.<pid>.<n>.v2.
  events = glob.glob(os.path.join(model_dir, "**", "events.out.tfevents.*"), recursive=True)
  assert len(events) == 2  # Train and eval, both the chief's.
  assert all(f".{children[0].pid}." in os.path.basename(path) for path in events)
  assert sorted(read_scalars(model_dir)["loss"]) == [1, 2, 3]
  assert sorted(read_scalars(os.path.join(model_dir, "eval"))["loss"]) == [3]


def test_sigterm_to_one_worker_stops_both_at_the_same_step(tmp_path):
  model_dir = str(tmp_path / "model")
  args = [
    "--config.train.epochs=1000000",
    "--config.train.steps_per_loop=1",
    "--config.train.log_step_count_steps=1",
    "--config.train.save_summary_steps=2",  # The summary cond, across workers.
  ]
  chief, other = _start_workers(model_dir, *args)
  deadline = time.monotonic() + 600
  while "step 3/1000000 " not in open(other.log_path).read() and other.poll() is None:
    assert time.monotonic() < deadline, "worker 1 never reached step 3"
    time.sleep(0.2)
  other.send_signal(signal.SIGTERM)  # The non-chief: the chief must learn of it.
  outputs = _wait([chief, other])
  steps = [int(re.search(r"Preempted at step (\d+)", stderr).group(1)) for stderr in outputs]
  assert steps[0] == steps[1] >= 3
  assert tf.train.load_checkpoint(model_dir).get_tensor("global_step") == steps[0]
  accuracy = read_scalars(model_dir)["training_accuracy"]
  assert 2 in accuracy and all(step % 2 == 0 for step in accuracy), sorted(accuracy)
  assert np.all(np.isfinite(list(accuracy.values())))


def test_early_stopping_on_the_chief_stops_both_workers(tmp_path):
  # Learning rate 0: the eval loss never decreases, so the chief decides to stop
  # at step 3; the other worker must stop with it instead of blocking.
  model_dir = str(tmp_path / "model")
  args = [
    "--config.train.epochs=1000",
    "--config.train.steps_per_loop=1",
    "--config.model.learning_rate=0.0",
    "--config.train.validation_steps=1",
    "--config.train.early_stopping_metric=loss",
    "--config.train.early_stopping_steps_without_decrease=2",
    "--config.train.early_stopping_hook_run_every_steps=1",
  ]
  _wait(_start_workers(model_dir, *args))
  step = int(tf.train.load_checkpoint(model_dir).get_tensor("global_step"))
  assert 3 <= step < 10

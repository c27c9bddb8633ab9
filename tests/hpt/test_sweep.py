"""A 6-trial toy sweep on SQLite, read back through Optuna, `deep hpt status` and TensorBoard."""

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import tensorflow as tf

from deephub.cli import main as deep
from deephub.cli import trainer_commands
from tests.cli_run import run_deep
from tests.hpt.conftest import load_study, optuna, write_tune


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
  """Runs the sweep once for every test here; returns (tune path, study dir, stderr)."""
  folder = tmp_path_factory.mktemp("sweep")
  tune = write_tune(folder / "sweep.yaml")
  study_dir = str(folder / "study")
  result = run_deep("hpt", "run", tune, "--study-dir", study_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  return tune, study_dir, result.stderr


def test_best_trial_is_the_minimum_and_holds_a_checkpoint(sweep):
  _, study_dir, stderr = sweep
  study = load_study(study_dir, "sweep")
  trials = study.get_trials()
  assert [t.number for t in trials] == list(range(6))
  assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
  assert study.best_trial.value == min(t.value for t in trials)
  best_dir = os.path.join(study_dir, f"trial-{study.best_trial.number}")
  assert tf.train.latest_checkpoint(best_dir).endswith("model.ckpt-3")
  for trial in trials:  # Each trial trained its own values into its own Estimator-layout model_dir.
    model_dir = os.path.join(study_dir, f"trial-{trial.number}")
    with open(os.path.join(model_dir, "config.json")) as f:
      config = json.load(f)
    assert config["model"]["learning_rate"] == trial.params["model.learning_rate"]
    assert config["model"]["hidden_neurons"] == trial.params["model.hidden_neurons"]
    assert config["model"]["model_dir"] == model_dir
    assert os.path.isfile(os.path.join(model_dir, "metrics.csv"))
    assert tf.io.gfile.glob(os.path.join(model_dir, "eval", "events.out.tfevents.*"))
    assert f"deep hpt: trial {trial.number} complete: loss = {trial.value:.6g}" in stderr
  assert len({t.params["model.learning_rate"] for t in trials}) == 6  # Sampled, not repeated.


def test_rerun_of_a_finished_study_runs_nothing(sweep):
  tune, study_dir, _ = sweep
  before = os.listdir(study_dir)
  result = run_deep("hpt", "run", tune, "--study-dir", study_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "6 of 6 trials finished" in result.stderr
  assert sorted(os.listdir(study_dir)) == sorted(before)
  assert len(load_study(study_dir, "sweep").get_trials()) == 6


def test_status_lists_best_first_and_reproduces_it(sweep):
  tune, study_dir, _ = sweep
  result = run_deep("hpt", "status", tune, "--study-dir", study_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  best = load_study(study_dir, "sweep").best_trial
  assert lines[0].split() == ["trial", "state", "value", "steps", "params"]
  assert lines[1].split()[:4] == [str(best.number), "complete", f"{best.value:.6g}", "3"]
  assert len(lines) == 1 + 6 + 2
  assert lines[7] == f"best: trial {best.number}, loss = {best.value:.6g}, in {study_dir}/trial-{best.number}"
  command = lines[8].removeprefix("reproduce: ")
  argv = shlex.split(command)
  assert argv[:4] == ["deep", "trainer", "train", "toy"]
  # The command parses back to the best trial's config (model_dir aside).
  config = trainer_commands.resolve_config(deep.build_parser().parse_args(argv[1:]))
  with open(os.path.join(study_dir, f"trial-{best.number}", "config.json")) as f:
    trained = json.load(f)
  assert config.model.learning_rate == trained["model"]["learning_rate"]
  assert config.model.hidden_neurons == trained["model"]["hidden_neurons"]
  assert config.train.epochs == trained["train"]["epochs"] == 3


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _post(port: int, route: str, body: dict):
  request = urllib.request.Request(
    f"http://127.0.0.1:{port}/data/plugin/hparams/{route}",
    data=json.dumps(body).encode(),
    headers={"Content-Type": "application/json"},
  )
  with urllib.request.urlopen(request, timeout=10) as response:
    return json.load(response)


def test_tensorboard_hparams_tab_compares_the_trials(sweep):
  _, study_dir, _ = sweep
  trials = {f"trial-{t.number}": t for t in load_study(study_dir, "sweep").get_trials()}
  port = _free_port()
  tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
  server = subprocess.Popen(
    [tensorboard, "--logdir", study_dir, "--host", "127.0.0.1", "--port", str(port),
     "--reload_interval", "1"],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
  )  # fmt: skip
  statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
  request = {"experimentName": "", "startIndex": 0, "sliceSize": 100, "allowedStatuses": statuses}
  try:
    deadline = time.monotonic() + 120
    while True:  # TensorBoard loads event files in the background.
      assert server.poll() is None, f"tensorboard exited: {server.stderr.read()[-2000:]}"
      try:
        groups = _post(port, "session_groups", request)["sessionGroups"]
        if len(groups) == 6 and all(len(g["metricValues"]) == 2 for g in groups):
          break
      except (urllib.error.URLError, ConnectionError):
        pass
      assert time.monotonic() < deadline, "tensorboard served no hparams session groups within 120 s"
      time.sleep(0.5)
    experiment = _post(port, "experiment", {"experimentName": ""})
  finally:
    server.terminate()
    server.wait(timeout=30)
  assert [h["name"] for h in experiment["hparamInfos"]] == [
    "model.hidden_neurons", "model.learning_rate", "train.epochs",
  ]  # fmt: skip
  assert experiment["hparamInfos"][1]["domainInterval"] == {"minValue": 1e-3, "maxValue": 0.3}
  assert {m["name"]["tag"] for m in experiment["metricInfos"]} == {"hpt/objective", "loss"}
  assert sorted(g["name"] for g in groups) == sorted(trials)
  for group in groups:
    trial = trials[group["name"]]
    assert group["hparams"]["model.learning_rate"] == pytest.approx(trial.params["model.learning_rate"])
    assert group["hparams"]["model.hidden_neurons"] == trial.params["model.hidden_neurons"]
    metrics = {(m["name"]["group"], m["name"]["tag"]): m["value"] for m in group["metricValues"]}
    assert metrics[("", "hpt/objective")] == pytest.approx(trial.value)
    assert metrics[("eval", "loss")] == pytest.approx(trial.value)
    assert group["sessions"][0]["status"] == "STATUS_SUCCESS"

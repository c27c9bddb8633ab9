"""Helpers for the `deep hpt` tests: tune files, a study reader, a PostgreSQL server.

The real CLI runs through tests/cli_run.py.
"""

import os
import subprocess
import tempfile

import optuna
import pytest
import yaml

from tests.conftest import REPO

# The toy variant, a few steps per trial: trials take seconds.
BASE_TUNE = {
  "goal": "MINIMIZE",
  "metric": "loss",
  "max_trials": 6,
  "variant": "toy",
  "seed": 7,
  "pruner": "none",
  "params": {
    "model.learning_rate": {"type": "REAL", "min": 1.0e-3, "max": 0.3, "scale": "LOG"},
    "model.hidden_neurons": {"type": "CATEGORICAL", "choices": [8, 16]},
    "train.epochs": {"type": "INTEGER", "constant": 3},
  },
}


def write_tune(path, **changes) -> str:
  """Writes BASE_TUNE with `changes` (None removes a key) to `path`; returns the path."""
  tune = {**BASE_TUNE, **changes}
  tune = {key: value for key, value in tune.items() if value is not None}
  path.write_text(yaml.safe_dump(tune, sort_keys=False))
  return str(path)


def load_study(study_dir, name: str, storage: str | None = None):
  """The study as Optuna stores it (SQLite in the study dir unless `storage`)."""
  url = storage or f"sqlite:///{os.path.join(study_dir, 'study.db')}"
  return optuna.load_study(study_name=name, storage=url)


@pytest.fixture(scope="session")
def postgres_url():
  """A real PostgreSQL server: DEEPHUB_TEST_POSTGRES_URL (.ci/run starts one), else one started here.

  Without a server the test is skipped with the reason, except in CI, where it fails.
  """
  url = os.environ.get("DEEPHUB_TEST_POSTGRES_URL")
  if url:
    yield url
    return
  folder = tempfile.mkdtemp(prefix="deephub-pg-")
  os.chmod(folder, 0o755)  # The server runs as an unprivileged user, which must reach its data.
  data = os.path.join(folder, "postgres")
  script = os.path.join(REPO, ".ci", "postgres")
  started = subprocess.run([script, "start", data], capture_output=True, text=True, timeout=600)
  if started.returncode != 0:
    reason = f"no PostgreSQL server could be started: {started.stderr.strip()[-500:]}"
    if os.environ.get("CI") == "true":
      pytest.fail(reason)
    pytest.skip(reason)
  try:
    yield started.stdout.strip()
  finally:
    subprocess.run([script, "stop", data], capture_output=True, timeout=120)

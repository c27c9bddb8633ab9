"""metrics.csv: the last train and eval scalars of a model_dir."""

import csv
import os

import pytest

from deephub.engine import train_and_evaluate
from deephub.engine.metrics_csv import write_metrics_csv
from deephub.engine.summaries import ScalarWriter


def _read(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def test_written_after_training(toy_config):
  toy_config.train.epochs = 3
  results = train_and_evaluate(toy_config)
  rows = _read(os.path.join(toy_config.model.model_dir, "metrics.csv"))
  assert [row["data_set"] for row in rows] == ["train", "validation"]
  assert list(rows[0]) == ["data_set", "step", "loss", "training_accuracy", "learning_rate", "accuracy"]
  assert rows[0]["step"] == rows[1]["step"] == "3"
  assert rows[0]["accuracy"] == "" and rows[1]["training_accuracy"] == ""
  assert float(rows[1]["loss"]) == pytest.approx(results["loss"], abs=1e-5)
  assert rows[0]["learning_rate"] == "0.00100"


def test_newest_step_wins_across_files_and_resumes(tmp_path):
  first = ScalarWriter(str(tmp_path))
  first.write_scalars(1, {"loss": 3.0, "global_step/sec": 9.0})
  first.write_scalars(2, {"loss": 2.0})
  first.close()
  second = ScalarWriter(str(tmp_path))  # A resumed run rewrites step 2.
  second.write_scalars(2, {"loss": 1.5})
  second.close()
  path = write_metrics_csv(str(tmp_path))
  assert _read(path) == [{"data_set": "train", "step": "2", "loss": "1.50000"}]


def test_nothing_to_write(tmp_path):
  assert write_metrics_csv(str(tmp_path)) is None
  assert not os.path.exists(tmp_path / "metrics.csv")

"""`deep hpt` refuses bad input with one line before any trial runs, and says how to install Optuna."""

import os
import sys

import pytest

from deephub.cli import main as deep
from tests.hpt.conftest import write_tune


def _one_line_error(capsys, argv) -> str:
  assert deep.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("deephub: error: ") and "\n" not in err, err
  return err


def test_a_metric_the_variant_does_not_report(tmp_path, capsys):
  tune = write_tune(tmp_path / "t.yaml", metric="auc")
  err = _one_line_error(capsys, ["hpt", "run", tune, "--study-dir", str(tmp_path / "study")])
  assert "metric 'auc' is not an eval scalar of toy; it reports loss, accuracy" in err
  assert not os.path.exists(tmp_path / "study")  # Nothing ran, nothing was created.


def test_an_unknown_key_from_the_command_line(tmp_path, capsys):
  tune = write_tune(tmp_path / "t.yaml")
  err = _one_line_error(capsys, ["hpt", "run", tune, "-p", "fixed_train_params.epoch", "3"])
  assert "unknown config key 'train.epoch'; closest: 'train.epochs'" in err


def test_an_unreachable_database(tmp_path, capsys):
  tune = write_tune(tmp_path / "t.yaml")
  url = "postgresql://someone:secret@127.0.0.1:1/nothing"
  err = _one_line_error(capsys, ["hpt", "run", tune, "--study-dir", str(tmp_path / "s"), "--storage", url])
  assert "cannot open storage postgresql://someone:***@127.0.0.1:1/nothing" in err
  assert "secret" not in err
  assert not os.path.exists(tmp_path / "s")


def test_status_before_any_run(tmp_path, capsys):
  tune = write_tune(tmp_path / "t.yaml")
  err = _one_line_error(capsys, ["hpt", "status", tune, "--study-dir", str(tmp_path / "none")])
  assert "run `deep hpt run" in err


def test_without_optuna_one_line_with_the_install_command(tmp_path, capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now fails as if not installed.
  err = _one_line_error(capsys, ["hpt", "status", write_tune(tmp_path / "t.yaml")])
  assert err == (
    "deephub: error: deep hpt needs Optuna, which is not installed; pip install 'deephub[hpt]' "
    "(Optuna and the PostgreSQL driver psycopg)"
  )


@pytest.mark.parametrize("flag, value", [("--workers", "0"), ("--trials", "0")])
def test_counts_below_one(tmp_path, capsys, flag, value):
  err = _one_line_error(capsys, ["hpt", "run", write_tune(tmp_path / "t.yaml"), flag, value])
  assert f"{flag} is 0; set it to 1 or more" in err

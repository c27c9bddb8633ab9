"""Training progress: a live tqdm line on terminals (checked on a real pty), log lines elsewhere."""

import io
import logging
import os
import sys

import pytest

from deephub.engine import progress
from tests.conftest import REPO
from tests.terminal import run_in_pty
from tests.test_console import NOISE_FRAGMENTS


class _Terminal(io.StringIO):
  def isatty(self) -> bool:
    return True


class _Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self) -> float:
    return self.now


def _make(kind, clock, **kwargs):
  return kind(
    total_steps=kwargs.get("total", 100), start_step=kwargs.get("start", 0), batch_size=10, clock=clock
  )


@pytest.mark.parametrize(
  "secs, text",
  [(0, "0:00:00"), (59.9, "0:00:59"), (61, "0:01:01"), (3600 * 5 + 7, "5:00:07"), (float("inf"), "?")],
)
def test_duration(secs, text):
  assert progress.duration(secs) == text


def test_log_progress_logs_only_when_due(caplog):
  clock = _Clock()
  # On absl's logger too: an earlier `deep` run in this process may have set it to WARNING.
  with _make(progress.LogProgress, clock, start=20) as log, caplog.at_level(logging.INFO, logger="absl"):
    clock.now += 4.0
    log.update(40, 1.5, log=False)
    log.update(60, 1.25, log=True)
    log.eval(60, {"loss": 1.0, "accuracy": 0.5})
  messages = [record.getMessage() for record in caplog.records]
  # 40 steps in 4 s since the start: 10 steps/s, 100 examples/s, 40 steps to go.
  assert messages == [
    "step 60/100  loss 1.25  10 steps/s  100 examples/s  ETA 0:00:04",
    "Eval at step 60: loss = 1, accuracy = 0.5",
  ]


def test_for_stderr_draws_only_on_a_terminal(monkeypatch):
  monkeypatch.setattr(sys, "stderr", io.StringIO())
  assert type(_make(progress.for_stderr, _Clock())) is progress.LogProgress
  monkeypatch.setattr(sys, "stderr", _Terminal())
  assert type(_make(progress.for_stderr, _Clock())) is progress.BarProgress


def test_bar_shows_step_loss_rates_eta_and_puts_other_output_above(monkeypatch):
  screen = _Terminal()
  monkeypatch.setattr(sys, "stderr", screen)
  handler = logging.StreamHandler(sys.stderr)
  logging.getLogger().addHandler(handler)
  clock = _Clock()
  try:
    with _make(progress.BarProgress, clock, total=50) as bar:
      clock.now += 2.0
      bar.update(10, 0.75, log=False)
      logging.getLogger("deephub.test").warning("a log record while the bar is up")
      bar.eval(10, {"loss": 0.5})
      clock.now += 8.0
      bar.update(50, 0.25, log=True)
    bar.eval(50, {"loss": 0.125})  # The final evaluation, after the bar closed.
  finally:
    logging.getLogger().removeHandler(handler)
  assert handler.stream is screen  # Restored after the bar closed.
  text = screen.getvalue()
  assert "step 10/50 |" in text and "loss 0.75  5 steps/s  50 examples/s  ETA 0:00:08" in text
  assert "step 50/50 |" in text and "loss 0.25  5 steps/s  50 examples/s  ETA 0:00:00" in text
  lines = text.replace("\r", "\n").splitlines()
  assert "a log record while the bar is up" in lines
  assert "eval at step 10: loss = 0.5" in lines and "eval at step 50: loss = 0.125" in lines


def test_toy_run_on_a_real_terminal(tmp_path):
  """`python -m deephub.train --variant=toy` on a pty: the live line, eval lines, no CUDA lines."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  code, screen = run_in_pty(
    [sys.executable, "-m", "deephub.train", "--variant=toy", "--config.train.steps_per_loop=2"],
    cwd=str(tmp_path),
    env={**env, "PYTHONPATH": REPO},
  )
  assert code == 0, screen
  for fragment in NOISE_FRAGMENTS:
    assert fragment not in screen, screen
  # Redrawn in place: carriage returns between states of the one line.
  states = [part for part in screen.split("\r") if part.startswith("step ")]
  assert states[0].startswith("step 0/10 |"), screen  # Drawn when training starts.
  final = next(state for state in states if state.startswith("step 10/10 |"))
  for field in ("loss ", " steps/s ", " examples/s ", "ETA 0:00:00"):
    assert field in final, final
  lines = screen.splitlines()
  assert any(line.startswith("eval at step 10: loss = ") for line in lines), screen
  assert not any("] step " in line for line in lines), "the periodic log lines are replaced by the live line"
  assert f"deephub: see the curves with: tensorboard --logdir {tmp_path / 'runs' / 'toy'}" in lines

"""Time to first step (tracing, XLA compilation) and peak resident memory of a toy run.

Each round starts a fresh Python process (`benchmarks/first_step.py`) that
trains one toy step with deephub or with Keras `fit(jit_compile=True)`, so
nothing is warm and the peak RSS belongs to that run alone. Import time is
reported apart from the first step. Ratios are Keras over deephub (higher is
better for deephub); the issue sets no target for them.
"""

import json
import os
import subprocess
import sys

import pytest

from benchmarks.report import REPORT, store_ratios

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_child(engine: str, model_dir: str) -> dict:
  env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
  done = subprocess.run(
    [sys.executable, "-m", "benchmarks.first_step", engine, model_dir],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("engine", ["keras", "deephub"])
def test_first_step_and_peak_memory(benchmark, profile, tmp_path, engine):
  runs = []

  def one_run():
    runs.append(_run_child(engine, str(tmp_path / f"model{len(runs)}")))

  benchmark.pedantic(one_run, rounds=profile.rounds, warmup_rounds=0, iterations=1)
  best = min(runs, key=lambda run: run["first_step_secs"])
  benchmark.extra_info.update(best)
  benchmark.extra_info["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
  # Stored as rates (per second, per MB) so that ours / theirs > 1 favours deephub.
  REPORT.add_rate("first_step", engine, 1 / best["first_step_secs"])
  REPORT.add_rate("peak_rss", engine, 1 / benchmark.extra_info["peak_rss_mb"])
  if engine == "deephub":
    store_ratios(
      benchmark,
      [
        REPORT.add_ratio("first_step", "deephub", "keras", target=None),
        REPORT.add_ratio("peak_rss", "deephub", "keras", target=None),
      ],
    )

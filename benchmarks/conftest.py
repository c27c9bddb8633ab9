"""Benchmark sizes, the cached synthetic dataset and the end-of-run ratio table.

`pytest benchmarks/` runs the full profile; `--bench-size=quick` (or
`DEEPHUB_BENCH_SIZE=quick`) runs small sizes and one round so CI can check
that the benchmarks still run. Timings are never asserted: each comparison
stores its ratios in `benchmark.extra_info` and in the table printed at the
end.
"""

import dataclasses
import os

import pytest

from benchmarks import synthetic_data
from benchmarks.report import REPORT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclasses.dataclass(frozen=True)
class Profile:
  """How much work each benchmark does per timed round."""

  name: str
  # Records in the synthetic dataset and the files they are spread over.
  num_examples: int
  num_shards: int
  # Timed rounds after one untimed warm-up round.
  rounds: int
  # Rounds of the paired comparisons (each also runs every alternative once).
  paired_rounds: int
  # Records the (slow) Estimator-era pipeline parses per round.
  legacy_examples: int
  # Train steps per round, by benchmark model.
  train_steps: dict[str, int]


PROFILES = {
  "full": Profile(
    name="full",
    num_examples=1_000_000,
    num_shards=8,
    rounds=3,
    paired_rounds=5,
    legacy_examples=200_000,
    train_steps={"toy_b10": 4000, "toy_b256": 2000, "mlp_b1024": 20},
  ),
  "quick": Profile(
    name="quick",
    num_examples=20_000,
    num_shards=4,
    rounds=1,
    paired_rounds=1,
    legacy_examples=5_000,
    train_steps={"toy_b10": 200, "toy_b256": 40, "mlp_b1024": 2},
  ),
}


def pytest_addoption(parser):
  parser.addoption(
    "--bench-size",
    choices=sorted(PROFILES),
    default=os.environ.get("DEEPHUB_BENCH_SIZE", "full"),
    help="benchmark sizes: 'full' (default, the published numbers) or 'quick' (CI smoke run)",
  )


@pytest.fixture(scope="session")
def profile(request) -> Profile:
  return PROFILES[request.config.getoption("--bench-size")]


@pytest.fixture(scope="session")
def dataset_files(profile) -> list[str]:
  """Shards of the synthetic dataset for this profile (generated on first use)."""
  return synthetic_data.ensure_dataset(profile.num_examples, profile.num_shards)


def pytest_terminal_summary(terminalreporter):
  lines = REPORT.table_lines()
  if lines:
    terminalreporter.section("deephub benchmark ratios (higher is better for deephub)")
    for line in lines:
      terminalreporter.write_line(line)

"""Rates measured in one run, and the ratios between them.

Each benchmark case records its rate under a (group, name) key; the case that
measures deephub comes last in its group and divides by the alternatives
measured before it in the same process, so every ratio compares runs on the
same machine under the same load.
"""

import dataclasses
import statistics
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Ratio:
  """deephub's rate over an alternative's, with the issue's target."""

  group: str
  ours: str
  theirs: str
  value: float
  # None where the issue sets no target (reported for information).
  target: float | None

  def line(self) -> str:
    if self.target is None:
      verdict = "(no target)"
    else:
      verdict = f"target >= {self.target:g}x  " + ("meets" if self.value >= self.target else "MISSES")
    return f"{self.group:<12} {self.ours:<24} / {self.theirs:<22} {self.value:7.2f}x   {verdict}"


class Report:
  """Rates by group and name, plus the ratios computed from them."""

  def __init__(self):
    self.rates: dict[tuple[str, str], float] = {}
    self.ratios: list[Ratio] = []

  def add_rate(self, group: str, name: str, rate: float) -> None:
    self.rates[(group, name)] = rate

  def rate(self, group: str, name: str) -> float | None:
    return self.rates.get((group, name))

  def best(self, group: str, prefix: str) -> tuple[str, float] | None:
    """The fastest rate in `group` whose name starts with `prefix`, or None."""
    found = [(name, rate) for (g, name), rate in self.rates.items() if g == group and name.startswith(prefix)]
    return max(found, key=lambda item: item[1]) if found else None

  def add_paired_ratio(self, group: str, ours: str, theirs: str, value: float, target: float | None) -> Ratio:
    """Records a ratio measured directly (see `run_paired`)."""
    ratio = Ratio(group=group, ours=ours, theirs=theirs, value=value, target=target)
    self.ratios.append(ratio)
    return ratio

  def add_ratio(self, group: str, ours: str, theirs: str, target: float | None) -> Ratio | None:
    """Records rate(ours) / rate(theirs); None when either was not measured in this run."""
    mine, other = self.rate(group, ours), self.rate(group, theirs)
    if mine is None or other is None or other <= 0:
      return None
    ratio = Ratio(group=group, ours=ours, theirs=theirs, value=mine / other, target=target)
    self.ratios.append(ratio)
    return ratio

  def table_lines(self) -> list[str]:
    return [ratio.line() for ratio in self.ratios]


# One report per pytest session (benchmarks run in one process).
REPORT = Report()


def record(benchmark, *, group: str, name: str, work: float, unit: str) -> float:
  """Stores `work / fastest round's seconds` of the benchmark just run; returns it.

  The fastest round, not the median: colleagues' jobs share this machine's
  cores, and the least disturbed round is the best estimate of the cost.

  Args:
    benchmark: the pytest-benchmark fixture after its timed call.
    group: comparison group (e.g. 'feeder', 'toy_b10').
    name: this case's name within the group.
    work: units of work done per timed call (examples, steps, FLOPs).
    unit: what `work` counts, for extra_info ('examples', 'steps', ...).
  """
  seconds = benchmark.stats.stats.min
  rate = work / seconds
  REPORT.add_rate(group, name, rate)
  benchmark.extra_info[f"{unit}_per_sec"] = rate
  benchmark.extra_info[f"{unit}_per_round"] = work
  return rate


def store_ratios(benchmark, ratios: list[Ratio | None]) -> None:
  """Copies the measured ratios into the benchmark's extra_info."""
  for ratio in ratios:
    if ratio is not None:
      key = f"{ratio.group}_vs_{ratio.theirs}"
      benchmark.extra_info[f"ratio_{key}"] = round(ratio.value, 4)
      benchmark.extra_info[f"target_{key}"] = ratio.target


def run_paired(
  benchmark, ours: Callable[[], object], alternatives: dict[str, Callable[[], object]], *, rounds: int
) -> dict[str, list[float]]:
  """Times `ours` with pytest-benchmark, each round right after one round of every alternative.

  Colleagues' jobs share this machine, and its load changes over minutes; a
  ratio of two cases measured minutes apart mostly measures that. Here every
  round of ours follows a round of each alternative (run in the benchmark's
  untimed `setup`, timed here), so each round gives ratios under the same
  load. Everything runs once untimed first, to trace and compile.

  Returns:
    Seconds per round of each alternative; ours are `benchmark.stats.stats.data`.
  """
  seconds = {name: [] for name in alternatives}

  def setup():
    for name, run in alternatives.items():
      start = time.perf_counter()
      run()
      seconds[name].append(time.perf_counter() - start)

  for run in (*alternatives.values(), ours):
    run()
  benchmark.pedantic(ours, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
  return seconds


def paired_ratio(
  ours_secs: list[float], theirs_secs: list[float], *, ours_work: float, theirs_work: float
) -> float:
  """Median over rounds of (our rate / their rate) from paired round times."""
  return statistics.median(
    (ours_work / mine) / (theirs_work / other) for mine, other in zip(ours_secs, theirs_secs, strict=True)
  )

"""Markdown tables from a `pytest benchmarks/ --benchmark-json=FILE` run.

  python -m benchmarks.table FILE

Prints one row per benchmark case (its rate from the fastest round) and one
row per ratio stored in `extra_info`, for pasting into benchmarks/README.md.
"""

import json
import sys

_RATES = (
  ("examples_per_sec", "examples/s"),
  ("steps_per_sec", "steps/s"),
  ("gflops_per_sec", "GFLOP/s"),
  ("first_step_secs", "s to first step"),
)


def case_rows(benchmarks: list[dict]) -> list[str]:
  rows = ["| case | rate | also |", "| --- | ---: | --- |"]
  for bench in benchmarks:
    info = bench["extra_info"]
    name = bench["name"].removeprefix("test_")
    shown = [f"{info[key]:,.4g} {unit}" for key, unit in _RATES if key in info]
    extra = []
    if "raw_read_MB_per_sec" in info:
      extra.append(f"{info['raw_read_MB_per_sec']:.0f} MB/s")
    if "peak_rss_mb" in info:
      extra.append(f"peak RSS {info['peak_rss_mb']:.0f} MB, import {info['import_secs']:.1f} s")
    rows.append(f"| `{name}` | {shown[0] if shown else ''} | {', '.join(shown[1:] + extra)} |")
  return rows


def ratio_rows(benchmarks: list[dict]) -> list[str]:
  rows = ["| deephub case | ratio | value | target |", "| --- | --- | ---: | --- |"]
  for bench in benchmarks:
    info = bench["extra_info"]
    for key, value in info.items():
      if key.startswith("ratio_"):
        target = info.get("target_" + key.removeprefix("ratio_"))
        verdict = (
          "none" if target is None else f">= {target:g} " + ("(met)" if value >= target else "(**missed**)")
        )
        label = key.removeprefix("ratio_").replace("_vs_", " / ")
        rows.append(f"| `{bench['name'].removeprefix('test_')}` | {label} | {value:.2f}x | {verdict} |")
  return rows


def main(path: str) -> None:
  with open(path, encoding="utf-8") as f:
    run = json.load(f)
  machine = run["machine_info"]
  cpu = machine.get("cpu", {})
  print(
    f"Machine: {cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} CPUs, Python {machine['python_version']}"
  )
  print(f"Run: {run['datetime']}\n")
  print("\n".join(ratio_rows(run["benchmarks"])) + "\n")
  print("\n".join(case_rows(run["benchmarks"])))


if __name__ == "__main__":
  main(sys.argv[1])

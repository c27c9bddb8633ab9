"""The native TFRecord ops: metadata at disk speed, counting, the CLI, and skip_corrupt_records' cost.

Every comparison is paired (`report.run_paired`) and reported as a ratio of
rates over the same bytes, with the page cache warm for every side:

- **metadata**: `metadata.generate(force=True)` (native scan: records, data
  CRCs and md5 in one C++ pass, files in parallel) against today's path
  before the native ops (the pure-Python framing walk + hashlib, one file at
  a time) and against `md5sum` over the same files.
- **count**: `metadata.count_records` (native headers-only scan, no md5)
  against `md5sum`.
- **CLI**: `deep utils generate-metadata --force` wall time, whole process
  with its imports, on ~1 GB of the same ~200-byte records (the synthetic
  shards copied 5 times; 5x the quick dataset under `--bench-size=quick`),
  against `md5sum` over the same files.
- **skip_corrupt_records**: the feeder's full pass (parsed batches) on clean
  files with `skip_corrupt_records: True` (scan once, read by offset) against
  the same feeder with it False (`tf.data.TFRecordDataset`). The issue asks
  for training throughput; the feeder alone is the stricter measure (a train
  step adds the same cost to both sides).
"""

import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from benchmarks import synthetic_data
from benchmarks.report import REPORT, paired_ratio, run_paired, store_ratios
from benchmarks.test_feeder import count_examples, deephub_feeder
from deephub.io import metadata
from deephub.ops import tfrecord as native

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUP = "native_ops"
# Copies of the synthetic shards in the CLI's dataset (1M records x 5 = ~1 GB).
CLI_COPIES = 5


@pytest.fixture(autouse=True, scope="module")
def _native_ops_loaded():
  assert native.available(), native.loader.status().describe()


def md5sum(files: list[str]) -> None:
  subprocess.run(["md5sum", *files], check=True, stdout=subprocess.DEVNULL)


def todays_generate(files: list[str]) -> list[metadata.FileEntry]:
  """Metadata as generated before the native ops: the Python walk, one file after another."""
  return [metadata._python_scan(path, "").entry for path in files]


def add_ratios(benchmark, name: str, megabytes: float, seconds: dict, targets: dict) -> None:
  ratios = []
  benchmark.extra_info[f"{name}_MB_per_sec"] = megabytes / benchmark.stats.stats.min
  for theirs, target in targets.items():
    benchmark.extra_info[f"{theirs}_MB_per_sec"] = megabytes / min(seconds[theirs])
    ours = benchmark.stats.stats.data
    value = paired_ratio(ours, seconds[theirs], ours_work=megabytes, theirs_work=megabytes)
    ratios.append(REPORT.add_paired_ratio(GROUP, name, theirs, value, target))
  store_ratios(benchmark, ratios)


def test_metadata_generation_against_todays_path_and_md5sum(benchmark, dataset_files, profile):
  megabytes = synthetic_data.read_bytes(dataset_files) / 1e6
  reports = []
  seconds = run_paired(
    benchmark,
    lambda: reports.append(metadata.generate(dataset_files, force=True)),
    {"todays_path": lambda: todays_generate(dataset_files), "md5sum": lambda: md5sum(dataset_files)},
    rounds=profile.paired_rounds,
  )
  add_ratios(benchmark, "generate_metadata", megabytes, seconds, {"todays_path": 3.0, "md5sum": 0.8})
  # Real work: the same entries as today's path, for every file.
  assert reports[-1].scanned == dataset_files
  entries = metadata.read_metadata(os.path.dirname(dataset_files[0]))
  assert [entries[os.path.basename(p)] for p in dataset_files] == todays_generate(dataset_files)


def test_counting_records_against_md5sum(benchmark, dataset_files, profile):
  megabytes = synthetic_data.read_bytes(dataset_files) / 1e6
  counts = []
  seconds = run_paired(
    benchmark,
    lambda: counts.append(metadata.count_records(dataset_files)),
    {"md5sum": lambda: md5sum(dataset_files)},
    rounds=profile.paired_rounds,
  )
  add_ratios(benchmark, "count_records", megabytes, seconds, {"md5sum": 1.0})
  assert sum(counts[-1]) == profile.num_examples


@pytest.fixture(scope="module")
def cli_files(dataset_files) -> list[str]:
  """~1 GB of ~200-byte records (the shards copied CLI_COPIES times), cached beside them."""
  folder = os.path.dirname(dataset_files[0]) + f"-cli-x{CLI_COPIES}"
  sources = [(copy, path) for copy in range(CLI_COPIES) for path in dataset_files]
  paths = [os.path.join(folder, f"copy{copy}-{os.path.basename(path)}") for copy, path in sources]
  if not os.path.exists(os.path.join(folder, "DONE")):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for (_, source), target in zip(sources, paths, strict=True):
      shutil.copy(source, target)
    open(os.path.join(folder, "DONE"), "w").close()
  return paths


def test_generate_metadata_cli_against_md5sum(benchmark, cli_files, profile):
  megabytes = synthetic_data.read_bytes(cli_files) / 1e6
  pattern = os.path.join(os.path.dirname(cli_files[0]), "copy*")
  command = [sys.executable, "-m", "deephub.cli.main", "utils", "generate-metadata", pattern, "--force"]
  env = {**os.environ, "PYTHONPATH": REPO}

  def cli():
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(command, check=True, cwd=REPO, env=env, **quiet)

  seconds = run_paired(benchmark, cli, {"md5sum": lambda: md5sum(cli_files)}, rounds=profile.paired_rounds)
  add_ratios(benchmark, "generate_metadata_cli", megabytes, seconds, {"md5sum": 0.5})
  entries = metadata.read_metadata(os.path.dirname(cli_files[0]))
  assert sum(entry.total_records for entry in entries.values()) == CLI_COPIES * profile.num_examples


def test_skip_corrupt_records_on_clean_files(benchmark, dataset_files, profile):
  def one_pass(skip: bool):
    dataset = deephub_feeder(dataset_files, 256, skip_corrupt_records=skip).dataset(epochs=1)
    run = tf.function(lambda: count_examples(dataset))
    return lambda: int(run())

  ours, theirs = one_pass(True), one_pass(False)
  counts = []
  rounds = profile.paired_rounds
  seconds = run_paired(benchmark, lambda: counts.append(ours()), {"skip_off": theirs}, rounds=rounds)
  work = profile.num_examples
  value = paired_ratio(benchmark.stats.stats.data, seconds["skip_off"], ours_work=work, theirs_work=work)
  benchmark.extra_info["skip_on_examples_per_sec"] = profile.num_examples / benchmark.stats.stats.min
  benchmark.extra_info["skip_off_examples_per_sec"] = profile.num_examples / min(seconds["skip_off"])
  store_ratios(benchmark, [REPORT.add_paired_ratio(GROUP, "skip_corrupt_on", "skip_off", value, 0.9)])
  assert counts[-1] == profile.num_examples

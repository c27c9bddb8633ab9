"""Metadata generation MB/s (`deep utils generate-metadata`) against the raw read of the same files.

Generation reads each file once, counting records and computing the md5 from
the same chunks. The alternative is the raw read limit: TensorFlow's C++
TFRecord reader over the same files, batched, with no parsing and no hashing.
Rounds are paired (see `report.run_paired`); the page cache is warm for both.
"""

import os

from benchmarks.report import REPORT, paired_ratio, run_paired, store_ratios
from benchmarks.test_feeder import count_examples, raw_read_dataset
from deephub.io import metadata

GROUP = "metadata"


def test_metadata_generation_against_raw_read(benchmark, dataset_files, profile):
  size_mb = sum(os.path.getsize(path) for path in dataset_files) / 1e6
  scans = []

  def generate():
    scans.append([metadata.scan_file(path) for path in dataset_files])

  def raw_read():
    return int(count_examples(raw_read_dataset(dataset_files, 1024)))

  theirs = run_paired(benchmark, generate, {"raw_read": raw_read}, rounds=profile.paired_rounds)
  ours = benchmark.stats.stats.data
  ratio = paired_ratio(ours, theirs["raw_read"], ours_work=size_mb, theirs_work=size_mb)
  benchmark.extra_info["metadata_MB_per_sec"] = size_mb / min(ours)
  benchmark.extra_info["raw_read_MB_per_sec"] = size_mb / min(theirs["raw_read"])
  store_ratios(benchmark, [REPORT.add_paired_ratio(GROUP, "generate_metadata", "raw_read", ratio, None)])
  # Real work: every file was counted, and the counts agree with TensorFlow's.
  assert sum(entry.total_records for entry in scans[-1]) == raw_read()

"""Metadata generation MB/s (`deep utils generate-metadata`) against the raw read of the same files.

Generation reads each file once, counting records and computing the md5 from
the same chunks (the native scan, see `test_native_ops.py` for its ratios to
the old pure-Python path and to `md5sum`). The alternatives are TensorFlow's C++ TFRecord reader over
the same files, batched, with no parsing and no hashing: the raw read as the
issue states it, and the faster chunked read limit (see `test_feeder`).
Rounds are paired (see `report.run_paired`); the page cache is warm for both.
"""

import os

from benchmarks.report import REPORT, paired_ratio, run_paired, store_ratios
from benchmarks.test_feeder import count_examples, raw_read_dataset, read_limit_dataset
from deephub.io import metadata

GROUP = "metadata"


def test_metadata_generation_against_raw_read(benchmark, dataset_files, profile):
  size_mb = sum(os.path.getsize(path) for path in dataset_files) / 1e6
  scans = []

  def generate():
    scans.append([metadata.scan_file(path) for path in dataset_files])

  reads = {
    name: (lambda read=read: int(count_examples(read(dataset_files, 1024))))
    for name, read in (("raw_read", raw_read_dataset), ("read_limit", read_limit_dataset))
  }
  theirs = run_paired(benchmark, generate, reads, rounds=profile.paired_rounds)
  ours = benchmark.stats.stats.data
  benchmark.extra_info["metadata_MB_per_sec"] = size_mb / min(ours)
  ratios = []
  for name in reads:
    benchmark.extra_info[f"{name}_MB_per_sec"] = size_mb / min(theirs[name])
    ratio = paired_ratio(ours, theirs[name], ours_work=size_mb, theirs_work=size_mb)
    ratios.append(REPORT.add_paired_ratio(GROUP, "generate_metadata", name, ratio, None))
  store_ratios(benchmark, ratios)
  # Real work: every file was counted, and the counts agree with TensorFlow's.
  assert sum(entry.total_records for entry in scans[-1]) == reads["raw_read"]()

"""What `skip_corrupt_records` passes over, reported once before training.

The TFRecord feeder's `report_corrupt_records` hook (the Feeder Protocol's
pre-scan) scans every file, logs each damaged one here and returns summary
scalars the engine writes at the starting step.
"""

from collections.abc import Sequence

from absl import logging


def report(scans: Sequence, *, compression: str) -> dict[str, float]:
  """Logs each damaged file once; returns the summary scalars of what is skipped.

  Args:
    scans: per-file scans (validation.FileScan): `path`, `error`, `records`,
      `corrupt_ranges`, `skipped_bytes`.
    compression: the files' compression ('' for none), to say why a whole
      file's rest is skipped.
  """
  bad = [scan for scan in scans if scan.error]
  for scan in bad:
    if scan.corrupt_ranges:
      logging.warning(
        "skip_corrupt_records: %s: %s; skipping only those %d bytes, reading its %d good records",
        scan.path,
        scan.error,
        scan.skipped_bytes,
        scan.records,
      )
    else:
      logging.warning(
        "skip_corrupt_records: %s: %s after %d good records; skipping the rest of the file (%s bytes; %s)",
        scan.path,
        scan.error,
        scan.records,
        scan.skipped_bytes or "unknown",
        "a compressed file cannot be read by record offset"
        if compression
        else "the native TFRecord ops that resynchronise are not loaded",
      )
  return {
    "input/corrupt_files_skipped": len(bad),
    # Resynchronisations: one per damaged range, or per file cut short by tf.data.
    "input/corrupt_records_skipped": sum(scan.corrupt_ranges or 1 for scan in bad),
    "input/corrupt_bytes_skipped": sum(scan.skipped_bytes for scan in bad),
  }

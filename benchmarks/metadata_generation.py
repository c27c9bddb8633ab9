"""Metadata generation throughput: deephub's one-pass scan against TF count + md5.

  python benchmarks/metadata_generation.py [--megabytes 256] [--record-bytes 1000]

Writes a TFRecord file (plain and GZIP) into a temp folder, reads each once
to warm the page cache, then times `deephub.io.metadata.scan_file` (md5 and
record count in one pass: the native C++ scan for the plain file when the
native ops load, the pure-Python walk for GZIP) beside the two-pass
alternative: `tf.data.TFRecordDataset(...).reduce` to count (C++) plus a
hashlib md5 pass. Prints MB/s of the stored (for GZIP: compressed) file and
the ratio.
"""

import argparse
import hashlib
import os
import tempfile
import time

import tensorflow as tf

from deephub.io import metadata


def write_file(path: str, *, megabytes: int, record_bytes: int, compression: str) -> int:
  records = megabytes * 1_000_000 // record_bytes
  # Half random, half zeros: GZIP compresses it about 2x, like real features.
  pool = [os.urandom(record_bytes // 2) + bytes(record_bytes - record_bytes // 2) for _ in range(64)]
  with tf.io.TFRecordWriter(path, options=compression or None) as writer:
    for i in range(records):
      writer.write(pool[i % len(pool)])
  return records


def tf_count_and_md5(path: str, compression: str) -> tuple[int, str]:
  # Batched so the count is not dominated by per-element dataset overhead.
  count = (
    tf.data.TFRecordDataset(path, compression_type=compression, buffer_size=1 << 22)
    .batch(4096)
    .reduce(tf.constant(0, tf.int64), lambda n, batch: n + tf.shape(batch, out_type=tf.int64)[0])
  )
  md5 = hashlib.md5(usedforsecurity=False)
  with open(path, "rb") as f:
    while chunk := f.read(1 << 20):
      md5.update(chunk)
  return int(count), md5.hexdigest()


def best_secs(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--megabytes", type=int, default=256)
  parser.add_argument("--record-bytes", type=int, default=1000)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as folder:
    for compression in ("", "GZIP"):
      path = os.path.join(folder, f"data{'.gz' if compression else ''}")
      records = write_file(
        path, megabytes=args.megabytes, record_bytes=args.record_bytes, compression=compression
      )
      size_mb = os.path.getsize(path) / 1e6
      entry = metadata.scan_file(path, compression)  # Warm-up: page cache, imports.
      assert (entry.total_records, entry.md5_hash) == tf_count_and_md5(
        path, compression
      ) and entry.total_records == records
      ours = best_secs(lambda p=path, c=compression: metadata.scan_file(p, c), args.repeats)
      theirs = best_secs(lambda p=path, c=compression: tf_count_and_md5(p, c), args.repeats)
      print(
        f"{compression or 'plain':5s} {size_mb:7.1f} MB, {records} records of {args.record_bytes} B: "
        f"deephub one pass {size_mb / ours:7.1f} MB/s | TF count + md5 {size_mb / theirs:7.1f} MB/s | "
        f"ratio {theirs / ours:.2f}x"
      )


if __name__ == "__main__":
  main()

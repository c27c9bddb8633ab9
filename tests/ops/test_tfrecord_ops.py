"""deephub.ops.tfrecord (tfrecord_ops.cc): scan and read, against tf.data and a pure-Python reference."""

import hashlib
import os
import resource

import hypothesis
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import strategies as st

from deephub.ops import tfrecord as native
from tests import tfrecord_reference as reference


@pytest.fixture(autouse=True, scope="module")
def _native_ops_loaded():
  # These tests are about the native ops: fail, not skip, when they cannot load.
  assert native.available(), native.loader.status().describe()


def write(tmp_path, data: bytes, name="f.tfrecord") -> str:
  path = tmp_path / name
  path.write_bytes(data)
  return str(path)


def framed(payloads) -> bytes:
  return b"".join(reference.frame(p) for p in payloads)


def tf_records(path: str) -> list[bytes]:
  return [record.numpy() for record in tf.data.TFRecordDataset(path)]


def read_all(scan: native.TFRecordScan) -> list[bytes]:
  return native.tfrecord_read(scan.path, scan.offsets, scan.lengths).numpy().tolist()


def as_pairs(offsets, lengths) -> list[tuple[int, int]]:
  return list(zip(offsets.tolist(), lengths.tolist(), strict=True))


@pytest.mark.parametrize(
  "payloads",
  [
    pytest.param([], id="no-records"),
    pytest.param([b""] * 5, id="zero-length"),
    pytest.param([b"a", b"", b"bc", b""], id="mixed-with-empty"),
    pytest.param([bytes(range(256)) * 40960], id="10MB-record"),
    pytest.param([os.urandom(i % 7) for i in range(5000)], id="thousands-tiny"),
    # 3 KB records over 9 MB: records straddle the scan's 4 MB buffer edges.
    pytest.param([os.urandom(3000) for _ in range(3000)], id="buffer-edges"),
  ],
)
def test_clean_files_match_tf_data_byte_for_byte(tmp_path, payloads):
  with tf.io.TFRecordWriter(str(tmp_path / "f")) as writer:  # TensorFlow's own writer.
    for payload in payloads:
      writer.write(payload)
  path = str(tmp_path / "f")
  data = open(path, "rb").read()
  scan = native.tfrecord_scan(path, md5=True)
  assert read_all(scan) == tf_records(path) == payloads
  assert scan.corrupt_offsets.size == 0 and scan.trailing_bytes == 0
  assert (scan.file_size, scan.md5) == (len(data), hashlib.md5(data).hexdigest())
  # Counting reads headers only; it finds the same records.
  headers = native.tfrecord_scan(path, verify_data_crc=False)
  assert as_pairs(headers.offsets, headers.lengths) == as_pairs(scan.offsets, scan.lengths)
  assert headers.md5 == ""


@pytest.mark.parametrize("tail", [1, 4, 11])
def test_partial_header_at_the_end_is_ignored_like_tf_data(tmp_path, tail):
  path = write(tmp_path, framed([b"x" * i for i in range(10)]) + b"\xab" * tail)
  assert len(tf_records(path)) == 10  # TensorFlow reads them all, with no error.
  scan = native.tfrecord_scan(path)
  assert (scan.num_records, scan.corrupt_offsets.size, scan.trailing_bytes) == (10, 0, tail)


def flip_bit(data: bytes, at: int) -> bytes:
  return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]


RECORDS = [bytes([i]) * (20 + i) for i in range(9)]
CLEAN = framed(RECORDS)
STARTS = [sum(len(reference.frame(p)) for p in RECORDS[:i]) for i in range(len(RECORDS))]
# Corrupt the first (0), a middle (4) or the last (8) record.
PLACES = {"start": 0, "middle": 4, "end": 8}


def corruption(kind: str, record: int) -> bytes:
  start = STARTS[record]
  if kind == "header-bit":
    return flip_bit(CLEAN, start + 3)
  if kind == "length-crc-bit":
    return flip_bit(CLEAN, start + 9)
  if kind == "data-bit":
    return flip_bit(CLEAN, start + 12 + 5)
  if kind == "truncated":
    return CLEAN[: start + 15]
  if kind == "garbage-between":
    return CLEAN[:start] + b"\x00\xff garbage \x13" * 3 + CLEAN[start:]
  raise AssertionError(kind)


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("kind", ["header-bit", "length-crc-bit", "data-bit", "truncated", "garbage-between"])
def test_corruption_costs_only_the_damaged_bytes(tmp_path, kind, place):
  data = corruption(kind, PLACES[place])
  path = write(tmp_path, data)
  expected_records, expected_skipped = reference.scan(data)
  scan = native.tfrecord_scan(path, md5=True)
  assert as_pairs(scan.offsets, scan.lengths) == expected_records
  assert as_pairs(scan.corrupt_offsets, scan.corrupt_lengths) == expected_skipped
  assert read_all(scan) == reference.payloads(data, expected_records)
  assert scan.md5 == hashlib.md5(data).hexdigest()
  # Only the damaged record is lost (garbage costs nothing but itself).
  lost = {"garbage-between": 0, "truncated": len(RECORDS) - PLACES[place]}.get(kind, 1)
  assert scan.num_records == len(RECORDS) - lost
  assert len(scan.corrupt_offsets) == 1


@pytest.mark.parametrize(
  "data",
  [
    pytest.param(b"", id="empty"),
    pytest.param(b"only garbage, no record at all" * 10, id="only-garbage"),
    pytest.param(os.urandom(5000), id="random-bytes"),
  ],
)
def test_files_without_records(tmp_path, data):
  path = write(tmp_path, data)
  scan = native.tfrecord_scan(path, md5=True)
  records, skipped = reference.scan(data)
  assert (scan.num_records, as_pairs(scan.corrupt_offsets, scan.corrupt_lengths)) == (0, skipped)
  assert records == [] and scan.md5 == hashlib.md5(data).hexdigest()
  assert native.tfrecord_read(path, np.zeros([0], np.int64), np.zeros([0], np.int64)).shape == [0]


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
  payloads=st.lists(st.binary(max_size=40), max_size=12),
  damage=st.lists(
    st.tuples(
      st.sampled_from(["flip", "insert", "delete", "truncate"]),
      st.integers(0, 10_000),
      st.binary(min_size=1, max_size=20),
    ),
    max_size=3,
  ),
)
def test_scan_finds_every_record_the_reference_finds(tmp_path_factory, payloads, damage):
  data = framed(payloads)
  for kind, where, junk in damage:
    at = where % (len(data) + 1)
    if kind == "flip" and at < len(data):
      data = flip_bit(data, at)
    elif kind == "insert":
      data = data[:at] + junk + data[at:]
    elif kind == "delete":
      data = data[:at] + data[at + len(junk) :]
    elif kind == "truncate":
      data = data[:at]
  path = write(tmp_path_factory.mktemp("prop"), data)
  records, skipped = reference.scan(data)
  scan = native.tfrecord_scan(path, md5=True)
  assert as_pairs(scan.offsets, scan.lengths) == records
  assert as_pairs(scan.corrupt_offsets, scan.corrupt_lengths) == skipped
  assert read_all(scan) == reference.payloads(data, records)
  assert scan.md5 == hashlib.md5(data).hexdigest()


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("verify_data_crc", [True, False])
def test_hostile_lengths_allocate_nothing(tmp_path, verify_data_crc):
  huge = (1 << 60).to_bytes(8, "little")
  liar = huge + reference.masked_crc(huge).to_bytes(4, "little") + b"tiny"
  data = framed([b"before"]) + liar + framed([b"after"])
  before = peak_rss_mb()
  scan = native.tfrecord_scan(write(tmp_path, data), verify_data_crc=verify_data_crc)
  assert read_all(scan) == [b"before", b"after"]
  assert as_pairs(scan.corrupt_offsets, scan.corrupt_lengths) == [(22, len(liar))]
  # A 2^60-byte allocation would have failed outright; a few MB is the buffer.
  assert peak_rss_mb() - before < 64
  with pytest.raises(tf.errors.InvalidArgumentError, match="no record of 1152921504606846976 bytes fits"):
    native.tfrecord_read(str(tmp_path / "f.tfrecord"), [22], [1 << 60])


def test_a_megabyte_of_0xff_ends_quickly(tmp_path):
  path = write(tmp_path, b"\xff" * 1_000_000)
  before = peak_rss_mb()
  scan = native.tfrecord_scan(path, md5=True)
  assert (scan.num_records, scan.corrupt_bytes) == (0, 1_000_000)
  assert peak_rss_mb() - before < 64


def test_md5_covers_bytes_skipped_by_a_headers_only_scan(tmp_path):
  # 300 KB records: the headers-only scan jumps over data it never checks,
  # yet the md5 (asked for) still covers every byte once.
  path = str(tmp_path / "f")
  with tf.io.TFRecordWriter(path) as writer:
    for _ in range(20):
      writer.write(os.urandom(300_000))
  with open(path, "ab") as f:
    f.write(b"tail")
  data = open(path, "rb").read()
  scan = native.tfrecord_scan(path, verify_data_crc=False, md5=True)
  assert scan.md5 == hashlib.md5(data).hexdigest() and scan.num_records == 20 and scan.trailing_bytes == 4


def test_read_merges_neighbours_in_any_order_and_checks_crcs(tmp_path):
  payloads = [os.urandom(i * 37 % 1000) for i in range(300)]
  path = write(tmp_path, framed(payloads))
  scan = native.tfrecord_scan(path)
  order = np.array([5, 4, 3, 299, 0, 1, 2, 150, 150], np.int64)
  got = native.tfrecord_read(path, scan.offsets[order], scan.lengths[order]).numpy().tolist()
  assert got == [payloads[i] for i in order]
  # The file changes after the scan: the read names the file and the offset.
  data = bytearray(open(path, "rb").read())
  data[int(scan.offsets[7]) + 12] ^= 1
  open(path, "wb").write(bytes(data))
  message = f"{path}: corrupted record at byte offset {scan.offsets[7]}"
  with pytest.raises(tf.errors.DataLossError, match=message):
    native.tfrecord_read(path, scan.offsets[5:10], scan.lengths[5:10])


def _bytes_read_by_this_process() -> int:
  with open("/proc/self/io", encoding="ascii") as f:
    return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


@pytest.mark.parametrize("gap, reads_the_gaps", [(256 << 10, True), (0, False)])
def test_read_merge_gap_decides_whether_gaps_are_read(tmp_path, gap, reads_the_gaps):
  payloads = [os.urandom(100_000) for _ in range(40)]
  path = write(tmp_path, framed(payloads))
  scan = native.tfrecord_scan(path)
  every_other = np.arange(0, 40, 2)
  offsets, lengths = scan.offsets[every_other], scan.lengths[every_other]
  native.tfrecord_read(path, offsets, lengths, max_merge_gap_bytes=gap)  # Warm-up: the kernel is built.
  before = _bytes_read_by_this_process()
  got = native.tfrecord_read(path, offsets, lengths, max_merge_gap_bytes=gap).numpy().tolist()
  read = _bytes_read_by_this_process() - before
  assert got == [payloads[i] for i in every_other]
  # 2 MB of the records asked for; merging across the gaps reads the 1.9 MB between them too.
  assert (read > 3_500_000) == reads_the_gaps, read


def test_read_refuses_a_negative_merge_gap(tmp_path):
  path = write(tmp_path, framed([b"a"]))
  with pytest.raises(tf.errors.InvalidArgumentError, match="max_merge_gap_bytes must be >= 0"):
    native.tfrecord_read(path, [0], [1], max_merge_gap_bytes=-1)


def test_read_works_inside_a_dataset_graph(tmp_path):
  payloads = [bytes([i]) * i for i in range(50)]
  path = write(tmp_path, framed(payloads))
  scan = native.tfrecord_scan(path)
  places = tf.data.Dataset.from_tensor_slices((scan.offsets, scan.lengths)).batch(16)
  chunks = places.map(lambda offsets, lengths: native.tfrecord_read(path, offsets, lengths))
  assert [record for chunk in chunks for record in chunk.numpy().tolist()] == payloads


def test_missing_file_names_it(tmp_path):
  with pytest.raises(tf.errors.NotFoundError, match="nope"):
    native.tfrecord_scan(str(tmp_path / "nope"))

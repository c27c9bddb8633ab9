"""_tfrecord_metadata.json: content, one-pass scan, change detection, GZIP.

Every test runs twice (the `native_ops` fixture): with the native scan op
and with the pure-Python fallback (DEEPHUB_NATIVE_OPS=0).
"""

import gzip
import hashlib
import json
import os
import shutil
import sys

import pytest

from deephub.errors import UserError
from deephub.io import metadata
from deephub.resources import toy_data_dir
from tests import tfrecord_reference

pytestmark = pytest.mark.usefixtures("native_ops")
COMPRESSED_TOY = os.path.join(os.path.dirname(toy_data_dir()), "compressed_toy")


def tfrecord_bytes(payloads):
  """Frames payloads as TFRecords, CRCs included (the native scan checks them)."""
  return b"".join(tfrecord_reference.frame(p) for p in payloads)


@pytest.fixture
def folder(tmp_path):
  shutil.copy(os.path.join(toy_data_dir(), "train-00000-of-00001"), tmp_path)
  shutil.copy(os.path.join(toy_data_dir(), "validation-00000-of-00001"), tmp_path)
  return tmp_path


def test_generate_writes_legacy_json(folder):
  files = metadata.list_data_files(str(folder / "*"))
  report = metadata.generate(files)
  assert report.matched == 2 and len(report.scanned) == 2
  data = json.loads((folder / "_tfrecord_metadata.json").read_text())
  train = (folder / "train-00000-of-00001").read_bytes()
  assert data == {
    "version": 1,
    "files": {
      "train-00000-of-00001": {
        "total_records": 10,
        "file_size": len(train),
        "md5_hash": hashlib.md5(train).hexdigest(),
      },
      "validation-00000-of-00001": {
        "total_records": 10,
        "file_size": 510,
        "md5_hash": hashlib.md5((folder / "validation-00000-of-00001").read_bytes()).hexdigest(),
      },
    },
  }
  # The metadata file is not a data file of the folder.
  assert metadata.list_data_files(str(folder / "*")) == files


def test_shipped_metadata_matches_shipped_data():
  for folder in (toy_data_dir(), COMPRESSED_TOY):
    files = metadata.list_data_files(os.path.join(folder, "*"))
    assert len(files) == 2
    assert metadata.check_files(files, deep=True) == []
    assert metadata.record_counts(files) == [10, 10]


@pytest.mark.parametrize("count, payload_bytes", [(0, 0), (1, 0), (3, 5), (1000, 700), (3, 300_000)])
@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_scan_counts_records_across_chunks(tmp_path, count, payload_bytes, compression):
  data = tfrecord_bytes([bytes([i % 256]) * payload_bytes for i in range(count)])
  stored = gzip.compress(data) if compression else data
  path = tmp_path / "f"
  path.write_bytes(stored)
  entry = metadata.scan_file(str(path), compression)
  assert entry == metadata.FileEntry(count, len(stored), hashlib.md5(stored).hexdigest())


def test_scan_reads_concatenated_gzip_members(tmp_path):
  path = tmp_path / "f.gz"
  path.write_bytes(gzip.compress(tfrecord_bytes([b"ab"] * 2)) + gzip.compress(tfrecord_bytes([b"c"] * 3)))
  assert metadata.scan_file(str(path), "GZIP").total_records == 5


@pytest.mark.parametrize(
  "stored, compression, reason",
  [
    (tfrecord_bytes([b"abc"])[:-1], "", "ends inside a record|corrupted from byte offset 0"),
    (b"not a TFRecord file", "", "ends inside a record|corrupted from byte offset 0"),
    (tfrecord_bytes([b"abc"]), "GZIP", "not a GZIP file"),
    (gzip.compress(tfrecord_bytes([b"abc"] * 50))[:-12], "GZIP", "GZIP stream ends early"),
  ],
)
def test_scan_rejects_unreadable_files(tmp_path, stored, compression, reason):
  path = tmp_path / "f"
  path.write_bytes(stored)
  with pytest.raises(metadata.UnreadableFileError, match=reason):
    metadata.scan_file(str(path), compression)


@pytest.mark.parametrize("tail", [b"junk", b"x" * 11])
def test_partial_header_after_the_last_record_is_counted_like_tf_data(folder, tail, caplog):
  # tf.data reads all 10 records and reports no error; so do the scan, the
  # metadata and (so) the feeder, with a warning about the ignored tail.
  train = folder / "train-00000-of-00001"
  train.write_bytes(train.read_bytes() + tail)
  report = metadata.generate([str(train)])
  assert report.scanned == [str(train)] and report.trailing == [str(train)]
  assert f"{train}: ignored the last {len(tail)} bytes" in caplog.text
  assert metadata.record_counts([str(train)]) == [10]


def test_short_junk_is_a_file_without_records(tmp_path):
  (tmp_path / "f").write_bytes(b"short")  # Fewer bytes than a header: tf.data reads 0 records.
  assert metadata.scan_file(str(tmp_path / "f")).total_records == 0


def test_native_scan_refuses_a_flipped_bit_the_framing_walk_cannot_see(folder, native_ops):
  train = folder / "train-00000-of-00001"
  data = bytearray(train.read_bytes())
  data[30] ^= 1  # Inside the first record's data: the framing is intact.
  train.write_bytes(bytes(data))
  if native_ops == "native":
    with pytest.raises(metadata.UnreadableFileError, match="corrupted from byte offset 0: 1 damaged range"):
      metadata.scan_file(str(train))
  else:  # The pure-Python walk checks framing, not CRCs.
    assert metadata.scan_file(str(train)).total_records == 10


def test_count_records_without_metadata(folder, native_ops):
  files = metadata.list_data_files(str(folder / "*"))
  assert metadata.count_records(files) == [10, 10]
  gz = [os.path.join(COMPRESSED_TOY, "train-00000-of-00001.gz")]
  assert metadata.count_records(gz, compression="GZIP") == [10]
  # A GZIP file counted as uncompressed is an error, not 0 records.
  message = "cannot read .*train-00000-of-00001.gz|--compression_type GZIP"
  with pytest.raises(UserError, match=message):
    metadata.count_records(gz)


def test_generate_skips_unreadable_and_keeps_fresh_entries(folder):
  (folder / "notes.txt").write_text("not a record file at all")
  files = metadata.list_data_files(str(folder / "*"))
  seen = []
  report = metadata.generate(
    files, on_file=lambda path, outcome: seen.append((os.path.basename(path), outcome))
  )
  assert [os.path.basename(p) for p in report.unreadable] == ["notes.txt"]
  assert seen[0][0] == "notes.txt" and seen[0][1].startswith("unreadable: ")
  assert set(json.loads((folder / "_tfrecord_metadata.json").read_text())["files"]) == {
    "train-00000-of-00001",
    "validation-00000-of-00001",
  }
  again = metadata.generate(files[1:])
  assert len(again.kept) == 2 and again.scanned == []
  forced = metadata.generate(files[1:], force=True)
  assert len(forced.scanned) == 2


def test_change_detection(folder):
  files = metadata.list_data_files(str(folder / "*"))
  metadata.generate(files)
  assert metadata.check_files(files, deep=True) == []
  # Same size, other content: only the deep check sees it.
  train = folder / "train-00000-of-00001"
  original = train.read_bytes()
  records = tfrecord_reference.payloads(original, tfrecord_reference.scan(original)[0])
  records[-1] = records[-1][:-1] + bytes([records[-1][-1] ^ 0xFF])  # Still valid TFRecord.
  data = tfrecord_bytes(records)
  assert len(data) == len(original) and data != original
  train.write_bytes(data)
  assert metadata.check_files(files) == []
  assert metadata.check_files(files, deep=True) == [
    (str(train), "md5 differs from the metadata (same size, changed content)")
  ]
  # Another size: the shallow check and the feeder's counts see it.
  train.write_bytes(bytes(data) + tfrecord_bytes([b"x"]))
  assert metadata.check_files(files) == [
    (str(train), f"size {len(data) + 17} bytes, metadata says {len(data)}")
  ]
  with pytest.raises(UserError) as error:
    metadata.record_counts(files)
  message = str(error.value)
  assert str(train) in message
  assert f"deep utils generate-metadata '{folder}/*'" in message
  assert "auto_generate_meta: True" in message
  # Auto-generation rescans the changed file and records it.
  assert metadata.record_counts(files, auto_generate=True) == [11, 10]
  assert metadata.check_files(files, deep=True) == []


def test_deep_check_reads_records_and_crcs(folder, native_ops):
  files = metadata.list_data_files(str(folder / "*"))
  metadata.generate(files)
  train = folder / "train-00000-of-00001"
  meta_file = folder / "_tfrecord_metadata.json"
  meta = json.loads(meta_file.read_text())
  # A count that is wrong but possible for the size: only a full read sees it.
  meta["files"][train.name]["total_records"] = 3
  meta_file.write_text(json.dumps(meta))
  assert metadata.check_files(files) == []
  # The native scan counts the records; the fallback compares the md5 only.
  expected = [(str(train), "10 records, metadata says 3")] if native_ops == "native" else []
  assert metadata.check_files(files, deep=True) == expected
  metadata.generate(files, force=True)
  # A flipped data byte with the CRC left as it was: same size, damaged record.
  data = bytearray(train.read_bytes())
  data[12 + 2] ^= 0xFF
  train.write_bytes(bytes(data))
  [(path, problem)] = metadata.check_files(files, deep=True)
  assert path == str(train) and problem.startswith(("unreadable: ", "md5 differs")), problem


def test_missing_metadata_names_the_fix(tmp_path):
  shutil.copy(os.path.join(COMPRESSED_TOY, "train-00000-of-00001.gz"), tmp_path)
  with pytest.raises(UserError, match=r"no entry in .*_tfrecord_metadata.json.*--compression_type GZIP"):
    metadata.record_counts([str(tmp_path / "train-00000-of-00001.gz")], compression="GZIP")
  assert metadata.record_counts(
    [str(tmp_path / "train-00000-of-00001.gz")], compression="GZIP", auto_generate=True
  ) == [10]


def test_invalid_metadata_file(tmp_path):
  (tmp_path / "_tfrecord_metadata.json").write_text('{"version": 2, "files": {}}')
  with pytest.raises(UserError, match=r"not valid TFRecord metadata \(version 2, expected 1\)"):
    metadata.read_metadata(str(tmp_path))


def test_metadata_module_does_not_import_tensorflow():
  import subprocess

  code = "import sys, deephub.io.metadata; print('tensorflow' in sys.modules)"
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
  "records, size, compression, possible",
  [
    (31, 510, "", True),
    (32, 510, "", False),  # 32 records need 512 bytes of framing.
    (0, 510, "", False),  # A non-empty uncompressed file holds a record.
    (0, 0, "", True),
    (0, 20, "GZIP", True),  # An empty gzip stream.
    (1032 * 100 // 16, 100, "GZIP", True),
    (1032 * 100 // 16 + 1, 100, "GZIP", False),  # Beyond deflate's 1032:1.
  ],
)
def test_impossible_count(records, size, compression, possible):
  problem = metadata.impossible_count(metadata.FileEntry(records, size, "0" * 32), compression)
  assert (problem == "") == possible, problem


@pytest.mark.parametrize(
  "entry, problem",
  [
    ({"total_records": True, "file_size": 1, "md5_hash": "0" * 32}, ".total_records is True (bool)"),
    ({"total_records": 1, "file_size": 1.0, "md5_hash": "0" * 32}, ".file_size is 1.0 (float)"),
    ({"total_records": 1, "file_size": 2**63, "md5_hash": "0" * 32}, ".file_size is 9223372036854775808,"),
    ({"total_records": 10**50, "file_size": 1, "md5_hash": "0" * 32}, "is a 51-digit number"),
    ({"total_records": 1, "file_size": 1, "md5_hash": 5}, ".md5_hash is 5, not 32 lowercase hex"),
    ({"total_records": 1, "file_size": 1}, " has no key 'md5_hash'"),
    ({"total_records": 1, "file_size": 1, "md5_hash": "0" * 32, "x": 1}, " has an unknown key 'x'"),
    ([1, 2], " is [1, 2] (list), not an object"),
  ],
)
def test_read_entries_sets_bad_entries_apart(tmp_path, entry, problem):
  good = {"total_records": 3, "file_size": 60, "md5_hash": "a" * 32}
  (tmp_path / metadata.METADATA_FILENAME).write_text(
    json.dumps({"version": 1, "files": {"good": good, "bad": entry}})
  )
  entries, bad = metadata.read_entries(str(tmp_path))
  assert entries == {"good": metadata.FileEntry(**good)}
  assert bad["bad"].startswith(f"in {tmp_path / metadata.METADATA_FILENAME}, files.bad")
  assert problem in bad["bad"]

"""The record index: built by one scan per file, cached beside the metadata or in the cache folder."""

import os

import numpy as np
import pytest
import tensorflow as tf

from deephub.errors import UserError
from deephub.io import global_shuffle, metadata, record_index
from deephub.io.tfrecord import TFRecordExamplesFeeder
from deephub.ops import tfrecord as native
from deephub.resources.make_toy_data import write_shard


@pytest.fixture
def cache_folder(tmp_path, monkeypatch):
  folder = tmp_path / "cache"
  monkeypatch.setenv(record_index.CACHE_VARIABLE, str(folder))
  return folder


def _files(folder, sizes=(40, 3, 25), *, with_metadata=True) -> list[str]:
  os.makedirs(folder, exist_ok=True)
  paths = [os.path.join(folder, f"data-{i}") for i in range(len(sizes))]
  start = 0
  for path, size in zip(paths, sizes, strict=True):
    write_shard(path, range(start, start + size))
    start += size
  if with_metadata:
    metadata.generate(paths)
  return paths


def _build(paths):
  return record_index.build(paths, max_index_bytes=1 << 30, where="test")


def _all_records(paths) -> list[bytes]:
  return [record.numpy() for record in tf.data.TFRecordDataset(paths)]


def test_cached_beside_the_metadata_which_stays_version_1(tmp_path, cache_folder, monkeypatch):
  paths = _files(tmp_path / "data")
  json_path = metadata.metadata_path(str(tmp_path / "data"))
  before = open(json_path).read()
  index = _build(paths)
  assert index.counts == [40, 3, 25] and index.num_records == 68
  cached = sorted(os.listdir(tmp_path / "data" / "_tfrecord_index"))
  assert cached == ["data-0.npz", "data-1.npz", "data-2.npz"]
  assert open(json_path).read() == before and not cache_folder.exists()
  assert set(metadata.read_metadata(str(tmp_path / "data"))) == {"data-0", "data-1", "data-2"}
  # Globs over the folder see data files only.
  assert metadata.list_data_files(str(tmp_path / "data" / "*")) == paths
  feeder = TFRecordExamplesFeeder(
    file_patterns=[str(tmp_path / "data" / "*")], batch_size=10, shuffle="global", seed=1,
    features_map={"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
  )  # fmt: skip
  assert feeder.files == paths and feeder.num_examples() == 68

  def no_scan(*args, **kwargs):
    raise AssertionError("scanned although cached")

  monkeypatch.setattr(native, "tfrecord_scan", no_scan)
  cached = _build(paths)
  np.testing.assert_array_equal(cached.offsets.numpy(), index.offsets.numpy())
  np.testing.assert_array_equal(cached.lengths.numpy(), index.lengths.numpy())


def test_a_rewritten_file_is_indexed_again(tmp_path, cache_folder):
  paths = _files(tmp_path)
  _build(paths)
  write_shard(paths[1], range(100, 110))  # Another size: the metadata entry is stale...
  assert _build(paths).counts == [40, 10, 25]  # ...so the cache folder, keyed by size and time.
  metadata.generate(paths)  # A new entry (new md5) beside the old cached index.
  index = _build(paths)
  assert index.counts == [40, 10, 25]
  ids = tf.range(index.num_records, dtype=tf.int64)
  records = global_shuffle.read_records(index, tf.constant(paths), ids, dense=True)
  assert records.numpy().tolist() == _all_records(paths)


def test_without_metadata_the_cache_folder_holds_it(tmp_path, cache_folder):
  paths = _files(tmp_path / "data", with_metadata=False)
  _build(paths)
  assert not (tmp_path / "data" / "_tfrecord_index").exists()
  assert len(os.listdir(cache_folder)) == 3


@pytest.mark.parametrize("dense", [True, False])
def test_read_records_returns_the_asked_records_in_the_asked_order(tmp_path, cache_folder, dense):
  paths = _files(tmp_path)
  index = _build(paths)
  everything = _all_records(paths)
  ids = np.random.default_rng(0).integers(0, 68, size=50)  # With repeats, across all files.
  records = global_shuffle.read_records(index, tf.constant(paths), tf.constant(ids), dense=dense)
  assert records.numpy().tolist() == [everything[i] for i in ids]


def test_a_damaged_record_fails_its_read_naming_the_file(tmp_path, cache_folder):
  paths = _files(tmp_path, sizes=(20,))
  index = _build(paths)
  data = bytearray(open(paths[0], "rb").read())
  data[int(index.offsets[5]) + 14] ^= 0xFF  # Inside record 5's data: the header still reads.
  open(paths[0], "wb").write(bytes(data))
  with pytest.raises(tf.errors.DataLossError, match="data-0.*corrupted record"):
    global_shuffle.read_records(index, tf.constant(paths), tf.constant([3, 5], tf.int64), dense=False)


def test_a_gzip_file_without_the_compression_key_cannot_be_indexed(tmp_path, cache_folder):
  path = str(tmp_path / "data-0")
  write_shard(path, range(30), "GZIP")
  with pytest.raises(UserError, match="cannot index .*data-0: no TFRecord record.*compression"):
    _build([path])

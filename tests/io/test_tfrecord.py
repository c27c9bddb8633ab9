"""TFRecordExamplesFeeder: batches, counts, labels, errors, and a pure-C++ pipeline."""

import os

import numpy as np
import pytest
import tensorflow as tf

from deephub.errors import UserError
from deephub.io import TFRecordExamplesFeeder, make_feeder, tfrecord
from deephub.resources import toy_data_dir

NUMBER = {"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}
LABEL = {"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}


def toy_feeder(**overrides):
  params = dict(
    file_patterns=[os.path.join(toy_data_dir(), "train-*")],
    batch_size=4,
    features_map=NUMBER,
    labels_map=LABEL,
  )
  params.update(overrides)
  return TFRecordExamplesFeeder(**params)


def numbers(dataset):
  return [batch[0]["number"].numpy().tolist() for batch in dataset]


@pytest.mark.parametrize(
  "batch_size, drop_remainder, max_examples, expected",
  [
    (4, False, -1, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]),
    (4, True, -1, [[0, 1, 2, 3], [4, 5, 6, 7]]),
    (10, False, -1, [list(range(10))]),
    (3, False, 5, [[0, 1, 2], [3, 4]]),
    (20, True, -1, []),
  ],
)
def test_one_pass_batches(batch_size, drop_remainder, max_examples, expected):
  feeder = toy_feeder(batch_size=batch_size, drop_remainder=drop_remainder, max_examples=max_examples)
  assert numbers(feeder.dataset(epochs=1)) == expected
  assert feeder.steps_per_epoch() == len(expected)


def test_labels_and_epochs_never_share_a_batch():
  batches = list(toy_feeder().dataset(epochs=2))
  assert [len(f["number"]) for f, _ in batches] == [4, 4, 2, 4, 4, 2]
  for features, labels in batches:
    np.testing.assert_array_equal(features["number"], labels["label"])
  assert toy_feeder().num_examples() == 10


def test_shuffle_permutes_each_epoch_and_keeps_every_example():
  feeder = toy_feeder(shuffle=True, batch_size=10, seed=3)
  first, second = numbers(feeder.dataset(epochs=2))
  assert sorted(first) == sorted(second) == list(range(10))
  assert first != list(range(10)) or second != list(range(10))


def test_features_only_without_labels_map():
  feeder = toy_feeder(labels_map={})
  batch = next(iter(feeder.dataset(epochs=1)))
  assert set(batch) == {"number"}
  assert batch["number"].dtype == tf.int64


def test_var_len_and_float_features(tmp_path):
  path = str(tmp_path / "data.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for i in range(3):
      example = tf.train.Example(features=tf.train.Features(feature={
        "tokens": tf.train.Feature(int64_list=tf.train.Int64List(value=list(range(i + 1)))),
        "dense": tf.train.Feature(float_list=tf.train.FloatList(value=[i, i + 0.5])),
      }))  # fmt: skip
      writer.write(example.SerializeToString())
  feeder = TFRecordExamplesFeeder(file_patterns=path, batch_size=3, auto_generate_meta=True, features_map={
    "tokens": {"type": "VarLenFeature", "dtype": "int64"},
    "dense": {"type": "FixedLenFeature", "shape": [2], "dtype": "float32"},
  })  # fmt: skip
  batch = next(iter(feeder.dataset(epochs=1)))
  assert isinstance(batch["tokens"], tf.SparseTensor)
  assert batch["tokens"].values.numpy().tolist() == [0, 0, 1, 0, 1, 2]
  np.testing.assert_allclose(batch["dense"], [[0, 0.5], [1, 1.5], [2, 2.5]])


def test_gzip_files(tmp_path):
  path = str(tmp_path / "data.tfrecord.gz")
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for i in range(5):
      feature = {"number": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))}
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
  feeder = TFRecordExamplesFeeder(
    file_patterns=[path], batch_size=5, features_map=NUMBER, compression="GZIP", auto_generate_meta=True
  )
  assert numbers_only(feeder) == [[0, 1, 2, 3, 4]]


def numbers_only(feeder):
  return [batch["number"].numpy().tolist() for batch in feeder.dataset(epochs=1)]


def write_numbered(path, numbers, blob_bytes=0):
  """Writes a TFRecord file of examples with `number` (and a `blob` of that many bytes)."""
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i in numbers:
      feature = {"number": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))}
      if blob_bytes:
        feature["blob"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x" * blob_bytes]))
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def round_robin(sizes, chunk):
  """The record order of files of `sizes` (numbered on from each other) taking turns in chunks."""
  first = np.cumsum([0] + sizes)
  order, offsets = [], [0] * len(sizes)
  while any(offset < size for offset, size in zip(offsets, sizes, strict=True)):
    for shard, size in enumerate(sizes):
      end = min(offsets[shard] + chunk, size)
      order += range(first[shard] + offsets[shard], first[shard] + end)
      offsets[shard] = max(offsets[shard], end)
  return order


def test_several_files_interleave_in_chunks(tmp_path):
  """Files take turns in chunks of records; batches straddle chunk and file ends."""
  chunk = tfrecord.CHUNK_RECORDS
  sizes = [2 * chunk + 5, chunk // 2, chunk + 1]
  first = np.cumsum([0] + sizes)
  for shard, size in enumerate(sizes):
    write_numbered(tmp_path / f"part-{shard}", range(first[shard], first[shard] + size))
  feeder = TFRecordExamplesFeeder(
    file_patterns=[str(tmp_path / "part-*")], batch_size=7, features_map=NUMBER, auto_generate_meta=True
  )
  batches = numbers_only(feeder)
  assert sum(batches, []) == round_robin(sizes, chunk)
  assert [len(batch) for batch in batches] == [7] * (sum(sizes) // 7) + [sum(sizes) % 7]
  assert feeder.steps_per_epoch() == len(batches)


def test_big_records_read_in_smaller_chunks(tmp_path):
  """Chunks of 64 KiB records hold at most 4 MiB, so images do not pile up in memory."""
  sizes = [150, 70]
  write_numbered(tmp_path / "part-0", range(150), blob_bytes=64 << 10)
  write_numbered(tmp_path / "part-1", range(150, 220), blob_bytes=64 << 10)
  feeder = TFRecordExamplesFeeder(
    file_patterns=[str(tmp_path / "part-*")],
    batch_size=32,
    features_map={**NUMBER, "blob": {"type": "FixedLenFeature", "shape": [], "dtype": "string"}},
    auto_generate_meta=True,
  )
  chunk = feeder._chunk_records()
  record_bytes = sum(os.path.getsize(path) for path in feeder.files) / sum(sizes)
  assert 32 <= chunk < tfrecord.CHUNK_RECORDS and chunk * record_bytes <= tfrecord._CHUNK_BYTES
  assert sum(numbers_only(feeder), []) == round_robin(sizes, chunk)


@pytest.mark.parametrize(
  "overrides, message",
  [
    ({"file_patterns": ["/nonexistent/train-*"]}, "'/nonexistent/train-\\*' matches no file"),
    ({"file_patterns": []}, "file_patterns is empty"),
    ({"batch_size": 0}, "batch_size is 0"),
    ({"compression": "ZIP"}, "compression is 'ZIP'"),
    ({"features_map": {}}, "features_map is empty"),
    ({"features_map": {"n": {"type": "Fixed", "dtype": "int64"}}}, "features_map.n.type is 'Fixed'"),
    ({"features_map": {"n": {"dtype": "int32"}}}, "features_map.n.dtype is 'int32'"),
  ],
)
def test_bad_config_is_a_clear_error(overrides, message):
  with pytest.raises(UserError, match=message):
    toy_feeder(**overrides)


def test_make_feeder_names_unknown_type_and_key():
  with pytest.raises(
    UserError, match="train.train_feeder.type is 'TFRecordFeeder'.*'TFRecordExamplesFeeder'"
  ):
    make_feeder({"type": "TFRecordFeeder"}, where="train.train_feeder")
  with pytest.raises(UserError, match="train.eval_feeder: .*batchsize"):
    make_feeder({"type": "TFRecordExamplesFeeder", "batchsize": 3}, where="train.eval_feeder")


def test_legacy_get_input_fn():
  assert numbers(toy_feeder(batch_size=5).get_input_fn(epochs=1)()) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def _op_types(graph_def):
  types = {node.op for node in graph_def.node}
  for function in graph_def.library.function:
    types |= {node.op for node in function.node_def}
  return types


def test_pipeline_runs_no_python_and_parses_whole_batches():
  dataset = toy_feeder(shuffle=True).dataset(epochs=None)
  graph_def = tf.compat.v1.GraphDef.FromString(
    tf.raw_ops.DatasetToGraphV2(input_dataset=dataset._variant_tensor).numpy()
  )
  ops = _op_types(graph_def)
  assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
  assert "ParseExampleV2" in ops and "ParseSingleExample" not in ops
  # Batch before parse: the parse map consumes batches of serialized strings.
  assert {"BatchDatasetV2", "ParallelInterleaveDatasetV4", "PrefetchDataset"} <= ops

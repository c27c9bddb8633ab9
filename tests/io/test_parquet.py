"""ParquetExamplesFeeder: table-driven checks on tiny files, and the toy variant trained on Parquet.

Runs in the io environment (tensorflow 2.17 + tensorflow-io); pyarrow writes the
files. pyarrow is imported inside the helpers so the main environment, which
lacks it, still collects (and deselects) this module.
"""

import numpy as np
import pytest
import tensorflow as tf

from deephub.config import defaults
from deephub.engine import train_and_evaluate
from deephub.errors import UserError
from deephub.io import make_feeder, tfrecord

pytestmark = pytest.mark.io

SCALAR_INT = {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}


def write_parquet(path, numbers, *, number_type="int64", row_group_size=4):
  """A file with columns number (pyarrow type name), label (int64), weight (double), name (string)."""
  import pyarrow as pa
  import pyarrow.parquet as pq

  table = pa.table(
    {
      "number": pa.array(numbers, pa.int64()).cast(getattr(pa, number_type)()),
      "label": pa.array(numbers, pa.int64()),
      "weight": pa.array([n / 4 for n in numbers], pa.float64()),
      "name": pa.array([f"n{n}" for n in numbers], pa.string()),
    }
  )
  pq.write_table(table, str(path), row_group_size=row_group_size)
  return str(path)


def feeder_config(patterns, **overrides):
  settings = {
    "type": "ParquetExamplesFeeder",
    "file_patterns": list(patterns),
    "batch_size": 4,
    "features_map": {"number": SCALAR_INT},
    "labels_map": {"label": SCALAR_INT},
  }
  return defaults.feeder_config(**{**settings, **overrides})


def collect(dataset):
  """Concatenates every batch of `(features, labels)` into numpy arrays per name."""
  out = {}
  for features, labels in dataset:
    for name, value in {**features, **labels}.items():
      out.setdefault(name, []).append(value.numpy())
  return {name: np.concatenate(values) for name, values in out.items()}


@pytest.fixture
def two_files(tmp_path):
  return [
    write_parquet(tmp_path / "part-0.parquet", range(0, 10)),
    write_parquet(tmp_path / "part-1.parquet", range(10, 16)),
  ]


def test_reads_every_row_with_labels(two_files, tmp_path):
  feeder = make_feeder(feeder_config([str(tmp_path / "part-*.parquet")]))
  assert feeder.files == two_files
  assert feeder.num_examples() == 16 and feeder.steps_per_epoch() == 4
  rows = collect(feeder.dataset(epochs=1))
  # Files take turns in chunks of rows, as TFRecord files do; both are shorter than a chunk.
  assert len(rows["number"]) < tfrecord.CHUNK_RECORDS
  np.testing.assert_array_equal(rows["number"], np.arange(16))
  np.testing.assert_array_equal(rows["label"], rows["number"])
  one_by_one = make_feeder(feeder_config(two_files, num_parallel_reads=1))
  np.testing.assert_array_equal(collect(one_by_one.dataset(epochs=1))["number"], np.arange(16))
  features, labels = next(iter(feeder.dataset(epochs=1)))
  assert features["number"].dtype == tf.int64 and features["number"].shape == [4]


@pytest.mark.parametrize(
  "entry, number_type, expected_dtype, expected_shape",
  [
    ({"dtype": "int64", "shape": []}, "int32", tf.int64, [4]),
    ({"dtype": "float32", "shape": []}, "int64", tf.float32, [4]),
    ({"dtype": "float32", "shape": [1]}, "float64", tf.float32, [4, 1]),
    ({"dtype": "int64", "shape": [1]}, "bool_", tf.int64, [4, 1]),
  ],
)
def test_columns_are_cast_to_the_configured_dtype(
  tmp_path, entry, number_type, expected_dtype, expected_shape
):
  numbers = [0, 1, 1, 0] if number_type == "bool_" else [0, 1, 2, 3]  # Bools as 0 / 1.
  path = write_parquet(tmp_path / "x.parquet", numbers, number_type=number_type)
  config = feeder_config([path], features_map={"number": {"type": "FixedLenFeature", **entry}})
  features, _ = next(iter(make_feeder(config).dataset(epochs=1)))
  assert features["number"].dtype == expected_dtype and features["number"].shape == expected_shape
  np.testing.assert_array_equal(features["number"].numpy().reshape(-1), numbers)


def test_string_and_double_columns(two_files):
  config = feeder_config(
    two_files[:1],
    features_map={"name": {"type": "FixedLenFeature", "shape": [], "dtype": "string"}},
    labels_map={"weight": {"type": "FixedLenFeature", "shape": [], "dtype": "float32"}},
    batch_size=3,
  )
  rows = collect(make_feeder(config).dataset(epochs=1))
  assert list(rows["name"][:3]) == [b"n0", b"n1", b"n2"]
  np.testing.assert_allclose(rows["weight"], np.arange(10) / 4)


@pytest.mark.parametrize(
  "overrides, message",
  [
    (
      {"features_map": {"missing": SCALAR_INT}},
      r"has no column 'missing' \(it has label, name, number, weight\)",
    ),
    (
      {"features_map": {"name": SCALAR_INT}},
      r"column 'name' holds string, which cannot become int64; set its dtype to one of string",
    ),
    (
      {"features_map": {"number": {"type": "VarLenFeature", "dtype": "int64"}}},
      r"one value per row; set its type to FixedLenFeature and its shape to \[\]",
    ),
    (
      {"features_map": {"number": {"type": "FixedLenFeature", "shape": [2], "dtype": "int64"}}},
      r"one value per row",
    ),
    ({"compression": "GZIP"}, r"compression is 'GZIP'; Parquet files compress internally"),
    ({"file_patterns": ["/nonexistent/*.parquet"]}, r"matches no file"),
  ],
)
def test_config_errors_name_the_key_and_the_fix(two_files, overrides, message):
  config = feeder_config(two_files, **overrides)
  with pytest.raises(UserError, match=message) as error:
    make_feeder(config, where="train.train_feeder")
  assert str(error.value).startswith("train.train_feeder: ") and "\n" not in str(error.value)


def test_files_with_different_schemas_fail_before_training(tmp_path):
  first = write_parquet(tmp_path / "a.parquet", range(4))
  second = write_parquet(tmp_path / "b.parquet", range(4), number_type="int32")
  with pytest.raises(UserError, match=r"column 'number' holds int32 where .*a.parquet holds int64"):
    make_feeder(feeder_config([first, second]))


def test_not_a_parquet_file(tmp_path):
  path = tmp_path / "bad.parquet"
  path.write_bytes(b"not parquet at all")
  with pytest.raises(UserError, match=r"bad.parquet is not a Parquet file \(no PAR1 marker"):
    make_feeder(feeder_config([str(path)]))
  truncated = tmp_path / "truncated.parquet"
  truncated.write_bytes(b"PAR1" + b"\0" * 16 + b"PAR1")  # Markers, but no footer.
  with pytest.raises(UserError, match=r"truncated.parquet is a truncated Parquet file \(footer of 0 bytes"):
    make_feeder(feeder_config([str(truncated)]))


def test_shuffle_is_seeded_and_keeps_every_row(two_files):
  def rows(seed):
    feeder = make_feeder(feeder_config(two_files, shuffle=True, shuffle_buffer_size=100), seed=seed)
    return collect(feeder.dataset(epochs=1))["number"]

  first, again, other = rows(1), rows(1), rows(2)
  np.testing.assert_array_equal(first, again)
  assert sorted(first) == list(range(16)) and not np.array_equal(first, other)


def test_max_examples_and_drop_remainder(two_files):
  feeder = make_feeder(feeder_config(two_files, max_examples=11, drop_remainder=True, num_parallel_reads=1))
  assert feeder.num_examples() == 11 and feeder.steps_per_epoch() == 2
  np.testing.assert_array_equal(collect(feeder.dataset(epochs=1))["number"], np.arange(8))


def _toy_parquet_config(toy_config, directory):
  for split, numbers in (("train", range(0, 10)), ("validation", range(10, 20))):
    write_parquet(f"{directory}/{split}-00000-of-00001.parquet", numbers, number_type="int32")
  for key, split in (("train_feeder", "train"), ("eval_feeder", "validation")):
    feeder = toy_config.train[key]
    feeder.type = "ParquetExamplesFeeder"
    feeder.file_patterns = [f"{directory}/{split}-*.parquet"]
  return toy_config


def test_toy_trains_on_parquet_like_on_tfrecord(toy_config, tmp_path):
  toy_config.train.epochs = 3
  train_and_evaluate(toy_config)
  tfrecord = tf.train.load_checkpoint(toy_config.model.model_dir).get_tensor("toy/w2")

  (tmp_path / "pq").mkdir()
  config = _toy_parquet_config(toy_config, str(tmp_path / "pq"))
  config.model.model_dir = str(tmp_path / "parquet_run")
  results = train_and_evaluate(config)
  reader = tf.train.load_checkpoint(config.model.model_dir)
  assert reader.get_tensor("global_step") == 3
  # Same rows in the same shuffled order, so the same weights.
  np.testing.assert_allclose(reader.get_tensor("toy/w2"), tfrecord, rtol=1e-5, atol=1e-7)
  assert set(results) == {"loss", "accuracy"}


def test_parquet_in_s3(toy_config, s3_bucket, tmp_path, upload):
  local = _toy_parquet_config(toy_config, str(tmp_path))
  for split in ("train", "validation"):
    upload(
      str(tmp_path / f"{split}-00000-of-00001.parquet"), f"{s3_bucket}/pq/{split}-00000-of-00001.parquet"
    )
  local.train.train_feeder.file_patterns = [f"{s3_bucket}/pq/train-*.parquet"]
  local.train.eval_feeder.file_patterns = [f"{s3_bucket}/pq/validation-*.parquet"]
  local.model.model_dir = f"{s3_bucket}/runs/pq"
  local.train.epochs = 2
  train_and_evaluate(local)
  assert tf.train.load_checkpoint(local.model.model_dir).get_tensor("global_step") == 2

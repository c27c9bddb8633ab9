"""Bad data: schema mismatches, corrupted and empty files, too little data.

Tests taking `native_ops` run with the native TFRecord ops and without them.
"""

import os
import shutil

import pytest
import tensorflow as tf

from deephub.engine import train_and_evaluate
from deephub.errors import UserError
from deephub.io import TFRecordExamplesFeeder
from deephub.resources import toy_data_dir
from tests import tfrecord_reference
from tests.conftest import read_scalars

TOY_TRAIN = os.path.join(toy_data_dir(), "train-00000-of-00001")
LABEL = {"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}


def feeder(path, features_map, **overrides):
  return TFRecordExamplesFeeder(file_patterns=[str(path)], batch_size=4, features_map=features_map,
                                labels_map=LABEL, auto_generate_meta=True, **overrides)  # fmt: skip


@pytest.mark.parametrize(
  "features_map, message",
  [
    ({"numbr": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
     r"features_map.numbr: .*train-00000-of-00001 has no feature 'numbr'; it has \['label', 'number'\]"),
    ({"number": {"type": "FixedLenFeature", "shape": [], "dtype": "float32"}},
     "features_map.number: dtype is float32 but .* holds int64; set dtype: int64"),
    ({"number": {"type": "FixedLenFeature", "shape": [3], "dtype": "int64"}},
     r"features_map.number: shape \[3\] needs 3 values but .* has 1"),
  ],
)  # fmt: skip
def test_schema_mismatch_names_the_feature(features_map, message):
  with pytest.raises(UserError, match=message):
    feeder(TOY_TRAIN, features_map).check_schema("train.train_feeder")


def test_matching_schema_passes():
  feeder(TOY_TRAIN, {"number": {"type": "VarLenFeature", "dtype": "int64"}}).check_schema("f")


def corrupt_copy(tmp_path, *, truncate):
  data = open(TOY_TRAIN, "rb").read()
  path = tmp_path / "train-bad"
  if truncate:
    path.write_bytes(data[:-20])
  else:
    broken = bytearray(data)
    broken[200] ^= 0xFF
    path.write_bytes(bytes(broken))
  shutil.copy(TOY_TRAIN, tmp_path / "train-good")
  return path


def test_corrupted_file_is_named(tmp_path, native_ops):
  bad = corrupt_copy(tmp_path, truncate=False)  # Same size: metadata cannot tell.
  number = {"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}
  if native_ops == "native":
    # The native scan checks data CRCs while generating metadata: caught before any step.
    with pytest.raises(UserError, match=f"cannot read {bad} .*corrupted from byte offset 153: 1 damaged"):
      feeder(tmp_path / "train-*", number)
    return
  f = feeder(tmp_path / "train-*", number)
  with pytest.raises(tf.errors.DataLossError) as caught:
    list(f.dataset(epochs=1))
  error = f.explain(caught.value, "train.train_feeder")
  assert f"corrupted TFRecord file {bad} (corrupted record at" in str(error)
  assert "deep utils validate" in str(error) and "skip_corrupt_records" in str(error)
  assert "train-good" not in str(error)


@pytest.mark.usefixtures("native_ops")
def test_truncated_file_is_named_before_training(tmp_path):
  bad = corrupt_copy(tmp_path, truncate=True)
  number = {"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}
  with pytest.raises(UserError, match=f"cannot read {bad} as a TFRecord file.*skip_corrupt_records"):
    feeder(tmp_path / "train-*", number)


@pytest.mark.usefixtures("native_ops")
def test_training_on_corrupted_data_stops_with_the_file_name(toy_config, tmp_path):
  bad = corrupt_copy(tmp_path, truncate=False)
  toy_config.train.train_feeder.file_patterns = [str(tmp_path / "train-*")]
  toy_config.train.train_feeder.auto_generate_meta = True
  with pytest.raises(UserError, match=f"(corrupted TFRecord file|cannot read) {bad}"):
    train_and_evaluate(toy_config)


def test_skip_corrupt_records_loses_only_the_damaged_record(tmp_path, native_ops):
  bad = corrupt_copy(tmp_path, truncate=False)
  number = {"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}
  f = feeder(tmp_path / "train-*", number, skip_corrupt_records=True)
  [bad_scan, good_scan] = f.scan()
  read = sorted(int(n) for features, _ in f.dataset(epochs=1) for n in features["number"].numpy())
  data = bad.read_bytes()
  records, skipped = tfrecord_reference.scan(data)  # The reference loses record 3 only.
  good = [tf.train.Example.FromString(p).features.feature["number"].int64_list.value[0] for p in
          tfrecord_reference.payloads(data, records)]  # fmt: skip
  assert len(good) == 9 and good_scan.error == ""
  if native_ops == "native":
    assert read == sorted(good + list(range(10)))
    assert (bad_scan.records, bad_scan.corrupt_ranges, bad_scan.skipped_bytes) == (9, 1, skipped[0][1])
    assert f.num_examples() == 19
  else:  # tf.data gives up the rest of the file at the damage.
    assert read == sorted(good[:3] + list(range(10)))
    assert (bad_scan.records, bad_scan.corrupt_ranges) == (3, 0)


def test_skip_corrupt_records_trains_and_reports(toy_config, tmp_path, native_ops):
  corrupt_copy(tmp_path, truncate=True)
  feeder_config = toy_config.train.train_feeder
  feeder_config.file_patterns = [str(tmp_path / "train-*")]
  feeder_config.skip_corrupt_records = True
  feeder_config.auto_generate_meta = True
  toy_config.train.epochs = 2
  train_and_evaluate(toy_config)
  scalars = read_scalars(toy_config.model.model_dir)
  assert scalars["input/corrupt_files_skipped"] == {0: 1.0}
  assert scalars["input/corrupt_records_skipped"] == {0: 1.0}
  assert scalars["input/corrupt_bytes_skipped"][0] > 0
  # 10 good + 9 readable records, batch 10: 2 batches per epoch.
  assert sorted(scalars["loss"]) == [1, 2, 3, 4]


def test_mid_file_damage_costs_one_record_in_training(toy_config, tmp_path, native_ops, caplog):
  bad = corrupt_copy(tmp_path, truncate=False)
  feeder_config = toy_config.train.train_feeder
  feeder_config.file_patterns = [str(tmp_path / "train-*")]
  feeder_config.skip_corrupt_records = True
  toy_config.train.epochs = 1
  train_and_evaluate(toy_config)
  scalars = read_scalars(toy_config.model.model_dir)
  damaged = tfrecord_reference.scan(bad.read_bytes())[1][0][1]
  assert len([m for m in caplog.messages if str(bad) in m and "skip_corrupt_records" in m]) == 1
  if native_ops == "native":
    assert scalars["input/corrupt_bytes_skipped"][0] == damaged
    assert sorted(scalars["loss"]) == [1, 2]  # 19 records, batch 10.
  else:
    assert sorted(scalars["loss"]) == [1, 2]  # 13 records, batch 10.
    assert scalars["input/corrupt_bytes_skipped"][0] > damaged


def test_empty_file_is_an_error(tmp_path):
  (tmp_path / "part-0").write_bytes(b"")
  with pytest.raises(UserError, match="part-0 .* is an empty file"):
    feeder(tmp_path / "part-*", {"n": {"dtype": "int64"}})


def test_less_than_one_batch_with_drop_remainder(toy_config):
  toy_config.train.train_feeder.batch_size = 11
  toy_config.train.train_feeder.drop_remainder = True
  with pytest.raises(UserError, match="yields no batch of 11 examples from 1 file"):
    train_and_evaluate(toy_config)


def test_schema_check_follows_class_type_and_defaults():
  # class_type VarLenFeature: any number of values passes; a FixedLenFeature with a default may be absent.
  feeder(
    TOY_TRAIN,
    {
      "number": {"class_type": "VarLenFeature", "dtype": "int64"},
      "weight": {"class_type": "FixedLenFeature", "shape": [], "dtype": "float32", "default_value": 1.0},
    },
  ).check_schema("f")
  required = {"weight": {"class_type": "FixedLenFeature", "shape": [], "dtype": "float32"}}
  with pytest.raises(UserError, match=r"f.features_map.weight: .* has no feature 'weight'"):
    feeder(TOY_TRAIN, required).check_schema("f")

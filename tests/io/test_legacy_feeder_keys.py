"""Old feeder promises kept by TFRecordExamplesFeeder: argument checks, total_steps, tf.io objects."""

import os
import re

import pytest
import tensorflow as tf

from deephub.errors import UserError
from deephub.io import TFRecordExamplesFeeder
from deephub.resources import toy_data_dir
from tests.conftest import run_cli


def toy_feeder(**overrides):
  params = dict(
    file_patterns=[os.path.join(toy_data_dir(), "train-*")],
    batch_size=4,
    features_map={"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
    labels_map={"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
  )
  params.update(overrides)
  return TFRecordExamplesFeeder(**params)


@pytest.mark.parametrize("batch_size, max_examples", [(6, 5), (2, 1)])
def test_batch_size_above_max_examples_is_refused(batch_size, max_examples):
  with pytest.raises(
    UserError, match=rf"^feeder batch_size {batch_size} exceeds max_examples {max_examples}; "
  ):
    toy_feeder(batch_size=batch_size, max_examples=max_examples)


@pytest.mark.parametrize("batch_size, max_examples", [(5, 5), (6, -1), (6, 0)])
def test_batch_size_within_max_examples_or_without_a_cap_is_accepted(batch_size, max_examples):
  assert toy_feeder(batch_size=batch_size, max_examples=max_examples).batch_size == batch_size


def test_cli_refuses_batch_size_above_max_examples_in_one_line(tmp_path):
  result = run_cli(
    "--variant=toy", f"--config.model.model_dir={tmp_path}", "--config.train.train_feeder.max_examples=5"
  )
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
    "deephub: error: train.train_feeder: feeder batch_size 10 exceeds max_examples 5; "
    "lower batch_size, or raise max_examples (-1 uses all examples)"
  )


@pytest.mark.parametrize(
  "batch_size, drop_remainder, epochs, expected", [(4, False, 3, 9), (4, True, 3, 6), (10, False, 2, 2)]
)
def test_total_steps_is_epochs_times_steps_per_epoch(batch_size, drop_remainder, epochs, expected):
  feeder = toy_feeder(batch_size=batch_size, drop_remainder=drop_remainder)
  assert feeder.total_steps(epochs) == expected == epochs * feeder.steps_per_epoch()
  assert len(list(feeder.dataset(epochs=epochs))) == expected  # Batches never span two passes.


@pytest.mark.parametrize(
  "entry, dense",
  [
    (tf.io.FixedLenFeature([1], tf.int64), lambda values: values[:, 0]),
    (tf.io.VarLenFeature(tf.int64), lambda values: tf.sparse.to_dense(values)[:, 0]),
    (tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True), lambda values: values[:, 0]),
  ],
)
def test_tf_io_feature_objects_read_as_their_config_entries(entry, dense):
  feeder = toy_feeder(
    batch_size=10, features_map={"number": entry}, labels_map={"label": tf.io.FixedLenFeature([], tf.int64)}
  )
  features, labels = next(iter(feeder.dataset(epochs=1)))
  assert dense(features["number"]).numpy().tolist() == labels["label"].numpy().tolist() == list(range(10))


def test_a_fixed_len_feature_object_keeps_its_default_value():
  feeder = toy_feeder(
    batch_size=10,
    features_map={
      "number": tf.io.FixedLenFeature([], tf.int64),
      "absent": tf.io.FixedLenFeature([], tf.int64, default_value=7),
    },
  )
  features, _ = next(iter(feeder.dataset(epochs=1)))
  assert features["absent"].numpy().tolist() == [7] * 10


def test_other_feature_objects_get_one_line():
  with pytest.raises(
    UserError, match=r"^features_map.x is a SparseFeature; give a mapping \{type, shape, dtype\}"
  ):
    toy_feeder(features_map={"x": tf.io.SparseFeature("i", "v", tf.int64, 3)})


@pytest.mark.parametrize("maps, prefetch", [(None, None), (3, 5), (1, 0)])
def test_num_parallel_maps_and_prefetch_set_the_pipeline(maps, prefetch, monkeypatch):
  """What the feeder asks tf.data for: recorded at the tf.data API, the values it then runs with."""
  calls = {"map": [], "prefetch": []}
  original_map, original_prefetch = tf.data.Dataset.map, tf.data.Dataset.prefetch

  def map_recorded(self, function, num_parallel_calls=None, **kwargs):
    calls["map"].append(num_parallel_calls)
    return original_map(self, function, num_parallel_calls=num_parallel_calls, **kwargs)

  def prefetch_recorded(self, buffer_size, **kwargs):
    calls["prefetch"].append(buffer_size)
    return original_prefetch(self, buffer_size, **kwargs)

  monkeypatch.setattr(tf.data.Dataset, "map", map_recorded)
  monkeypatch.setattr(tf.data.Dataset, "prefetch", prefetch_recorded)
  dataset = toy_feeder(num_parallel_maps=maps, prefetch=prefetch).dataset(epochs=1)
  # The parse map; tf.data's own helpers add sequential maps (None).
  assert [value for value in calls["map"] if value is not None] == [
    tf.data.AUTOTUNE if maps is None else maps
  ]
  assert calls["prefetch"] == ([] if prefetch == 0 else [tf.data.AUTOTUNE if prefetch is None else prefetch])
  assert [f["number"].numpy().tolist() for f, _ in dataset] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize(
  "key, value, message",
  [
    ("num_parallel_maps", 0, "num_parallel_maps is 0; set it to 1 or more, or None (AUTOTUNE)"),
    ("num_parallel_maps", True, "num_parallel_maps is True; set it"),
    ("prefetch", -1, "prefetch is -1; set it to 0 (off), more, or None (AUTOTUNE)"),
    ("prefetch", 2.5, "prefetch is 2.5; set it"),
  ],
)
def test_bad_num_parallel_maps_or_prefetch_get_one_line(key, value, message):
  with pytest.raises(UserError, match=rf"^feeder {re.escape(message)}"):
    toy_feeder(**{key: value})


def test_cli_takes_num_parallel_maps_and_prefetch(tmp_path):
  result = run_cli(
    "--variant=toy",
    f"--config.model.model_dir={tmp_path}",
    "--config.train.epochs=1",
    "--config.train.train_feeder.num_parallel_maps=2",
    "--config.train.train_feeder.prefetch=4",
    "--config.train.eval_feeder.prefetch=0",
  )
  assert result.returncode == 0, result.stderr
  assert "finished toy" in result.stderr

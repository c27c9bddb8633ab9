"""TFRecordExamplesFeeder under tf.distribute: shares per input pipeline, per-replica batches."""

import os

import pytest
import tensorflow as tf

from deephub.errors import UserError
from deephub.io.tfrecord import TFRecordExamplesFeeder
from deephub.resources.make_toy_data import write_shard

_INT = {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}


def _feeder(tmp_path, num_files: int, **overrides) -> TFRecordExamplesFeeder:
  """`num_files` files holding the numbers 0..23 between them."""
  for i in range(num_files):
    write_shard(str(tmp_path / f"data-{i}"), range(i, 24, num_files))
  params = dict(
    file_patterns=[os.path.join(tmp_path, "data-*")], batch_size=4, features_map={"number": _INT},
    auto_generate_meta=True,
  )  # fmt: skip
  return TFRecordExamplesFeeder(**{**params, **overrides})


def _numbers(feeder, pipelines: int, pipeline: int, replicas: int) -> tuple[list[int], set[int]]:
  """(sorted numbers, batch sizes) that one input pipeline yields in one pass."""
  context = tf.distribute.InputContext(pipelines, pipeline, replicas)
  batches = [batch["number"].numpy() for batch in feeder.dataset(epochs=1, input_context=context)]
  return sorted(int(n) for batch in batches for n in batch), {len(batch) for batch in batches}


@pytest.mark.parametrize(
  "num_files, shuffle, max_examples",
  [(4, False, -1), (4, True, -1), (1, False, -1), (3, False, -1), (4, False, 10)],
)
def test_pipelines_split_one_pass_exactly(tmp_path, num_files, shuffle, max_examples):
  feeder = _feeder(tmp_path, num_files, shuffle=shuffle, max_examples=max_examples, seed=7)
  first, _ = _numbers(feeder, 2, 0, 2)
  second, _ = _numbers(feeder, 2, 1, 2)
  assert not set(first) & set(second)
  expected = 24 if max_examples < 0 else max_examples
  assert len(first) + len(second) == expected
  if max_examples < 0:
    assert sorted(first + second) == list(range(24))


@pytest.mark.parametrize("shuffle", [True, False])
def test_whole_files_per_pipeline_when_records_are_not_addressed(tmp_path, monkeypatch, shuffle):
  # Unshuffled files are read record-exact where the native ops are loaded
  # (tests/io/test_global_shuffle.py); the buffer shuffle, and any order
  # without the ops, give each pipeline whole files.
  from deephub.ops import loader

  if not shuffle:
    monkeypatch.setenv(loader.DISABLE_VARIABLE, "0")
  loader.reset()
  try:
    feeder = _feeder(tmp_path, 4, shuffle=shuffle, seed=7)  # data-i holds the numbers = i mod 4.
    first, _ = _numbers(feeder, 2, 0, 2)
  finally:
    monkeypatch.undo()
    loader.reset()
  assert len({n % 4 for n in first}) == 2 and len(first) == 12
  if not shuffle:
    assert {n % 4 for n in first} == {0, 2}


@pytest.mark.parametrize("batch_size, replicas, expected", [(8, 4, {2}), (8, 1, {8}), (6, 2, {3})])
def test_batch_size_is_global(tmp_path, batch_size, replicas, expected):
  feeder = _feeder(tmp_path, 1, batch_size=batch_size, drop_remainder=True)
  assert _numbers(feeder, 1, 0, replicas)[1] == expected


def test_batch_that_does_not_split_names_the_fix(tmp_path):
  feeder = _feeder(tmp_path, 1, batch_size=10)
  with pytest.raises(UserError, match="batch_size 10 is the global batch .* set it to a multiple of 4"):
    _numbers(feeder, 1, 0, 4)

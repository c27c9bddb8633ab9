"""Exact resume: the train input position travels with the checkpoint."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine import train_and_evaluate
from deephub.engine.input_state import iterator_entry
from deephub.io import TFRecordExamplesFeeder
from deephub.resources import toy_data_dir


def toy_feeder():
  return TFRecordExamplesFeeder(
    file_patterns=[os.path.join(toy_data_dir(), "train-*")], batch_size=3, shuffle=True, seed=7,
    features_map={"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
  )  # fmt: skip


def take(iterator, n):
  return [next(iterator)["number"].numpy().tolist() for _ in range(n)]


def test_restored_iterator_continues_where_the_saved_one_was():
  original = iter(toy_feeder().dataset())
  before = take(original, 5)  # One batch into the second epoch (4 batches per epoch).
  state = iterator_entry(original).read()
  expected = take(original, 6)

  resumed = iter(toy_feeder().dataset())
  iterator_entry(resumed).assign(state)
  assert take(resumed, 6) == expected
  # The interrupted epoch still holds every example exactly once.
  assert sorted(sum([before[4], *expected[:3]], [])) == list(range(10))


@pytest.mark.parametrize("shuffle", [True, "global"])
def test_interrupted_run_equals_uninterrupted(toy_config, tmp_path, shuffle):
  feeder = toy_config.train.train_feeder
  feeder.batch_size = 3  # 4 batches per epoch, shuffled: order matters for the weights.
  feeder.shuffle = shuffle
  if shuffle == "global":  # Its record index is cached beside the data: a copy in tmp_path.
    shutil.copytree(toy_data_dir(), tmp_path / "data")
    feeder.file_patterns = [str(tmp_path / "data" / "train-*")]
  toy_config.train.steps_per_loop = 1
  toy_config.train.epochs = 3
  straight_dir = toy_config.model.model_dir + "_straight"
  interrupted_dir = toy_config.model.model_dir

  toy_config.train.epochs = 2  # Stop mid-schedule: 8 of 12 steps...
  toy_config.train.save_checkpoint_steps = 5  # ...with the last periodic checkpoint at step 5.
  train_and_evaluate(toy_config)
  # Simulate a crash after step 5: drop the final checkpoint (step 8).
  with open(os.path.join(interrupted_dir, "checkpoint"), "w") as f:
    f.write('model_checkpoint_path: "model.ckpt-5"\nall_model_checkpoint_paths: "model.ckpt-5"\n')
  for name in os.listdir(interrupted_dir):  # A resume takes the newest checkpoint on disk.
    if name.startswith("model.ckpt-8."):
      os.remove(os.path.join(interrupted_dir, name))
  toy_config.train.epochs = 3
  train_and_evaluate(toy_config)

  toy_config.model.model_dir = straight_dir
  train_and_evaluate(toy_config)
  resumed = tf.train.load_checkpoint(interrupted_dir)
  straight = tf.train.load_checkpoint(straight_dir)
  assert resumed.get_tensor("global_step") == straight.get_tensor("global_step") == 12
  for key in ("toy/w1", "toy/b1", "toy/w2/Adam", "toy/b2/Adam_1"):
    np.testing.assert_allclose(resumed.get_tensor(key), straight.get_tensor(key), rtol=1e-5, atol=1e-8)


def test_without_input_state_the_epoch_starts_over(toy_config):
  toy_config.train.checkpoint_input_state = False
  toy_config.train.epochs = 1
  train_and_evaluate(toy_config)
  model_dir = toy_config.model.model_dir
  assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-1")
  assert not [name for name in os.listdir(model_dir) if "input_state" in name]

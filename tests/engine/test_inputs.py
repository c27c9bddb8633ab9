"""The engine's inputs: feeder objects given to train_and_evaluate, through the Feeder Protocol only."""

import os

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine import train_and_evaluate
from deephub.errors import UserError
from deephub.io.memory import MemorySamplesFeeder
from tests.conftest import read_scalars


def memory_feeder(n: int, **options) -> MemorySamplesFeeder:
  numbers = np.arange(n, dtype=np.int64) % 100
  return MemorySamplesFeeder({"number": numbers}, {"label": numbers}, **options)


def test_trains_and_resumes_from_in_memory_feeders(toy_config):
  # The configured files do not exist: only the given feeders are read.
  toy_config.train.train_feeder.file_patterns = ["/nonexistent/train-*"]
  toy_config.train.eval_feeder.file_patterns = ["/nonexistent/validation-*"]
  toy_config.train.epochs = 2
  feeders = {
    "train_feeder": memory_feeder(20, batch_size=5, drop_remainder=True),
    "eval_feeder": memory_feeder(7),
  }
  results = train_and_evaluate(toy_config, **feeders)
  model_dir = toy_config.model.model_dir
  assert tf.train.latest_checkpoint(model_dir) == os.path.join(model_dir, "model.ckpt-8")  # 2 x 20 / 5.
  assert set(results) == {"loss", "accuracy"}
  assert read_scalars(os.path.join(model_dir, "eval"))["loss"] == {8: pytest.approx(results["loss"])}

  toy_config.train.epochs = 3
  train_and_evaluate(toy_config, **feeders)
  assert sorted(read_scalars(model_dir)["loss"]) == list(range(1, 13))  # Steps 9..12 continue.


def test_a_feeder_without_a_full_batch_says_what_it_reads(toy_config):
  with pytest.raises(
    UserError, match=r"yields no batch of 128 examples from 10 examples in memory; lower batch"
  ):
    train_and_evaluate(toy_config, train_feeder=memory_feeder(10, batch_size=128, drop_remainder=True))


@pytest.mark.parametrize("key", ["validation_secs", "validation_steps"])
def test_an_eval_period_without_eval_data_names_the_key(toy_config, key):
  toy_config.train.eval_feeder.file_patterns = []
  toy_config.train.validation_secs = None
  toy_config.train[key] = 60
  with pytest.raises(
    UserError,
    match=rf"^train\.{key} is 60 but train\.eval_feeder has no file_patterns; set train\.{key} to None",
  ):
    train_and_evaluate(toy_config)
  assert tf.train.latest_checkpoint(toy_config.model.model_dir) is None

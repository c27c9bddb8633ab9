"""Config values a user sets with -p / --config. that used to end in a traceback.

Each used to fail deep inside Keras, tf.data or the engine's arithmetic (a
numpy ValueError for `runtime.seed -1`, a TypeError for `train.epochs None`,
a graph error for `shuffle_buffer_size 0`). Each must now be one UserError
line naming the key and value; the config checks refuse theirs before
anything is written into model_dir. Most cases are checked in-process; one
runs through both CLIs.
"""

import os

import pytest

from deephub.engine import train_and_evaluate
from deephub.engine.schedule import check_config
from deephub.errors import UserError
from deephub.io.examples_pipeline import check_feeder_keys
from tests.cli_run import run_deep
from tests.conftest import run_cli


def _set(config, key, value):
  *parents, leaf = key.split(".")
  section = config
  for part in parents:
    section = section[part]
  section[leaf] = value


# (key, value, the start of the one-line message).
REFUSED_BY_CHECK_CONFIG = [
  ("runtime.seed", -1, "runtime.seed is -1; set it to a whole number from 0 to 2**32 - 1 (4294967295)"),
  ("runtime.seed", 2**32, "runtime.seed is 4294967296; set it to a whole number from 0 to 2**32 - 1"),
  ("runtime.seed", True, "runtime.seed is True; set it to a whole number"),
  ("runtime.seed", None, "runtime.seed is None; set it to a whole number (the default is 42)"),
  ("train.epochs", None, "train.epochs is None; set it to a whole number (the default is 1)"),
  ("train.keep_checkpoint_max", -1, "train.keep_checkpoint_max is -1; set it to 1 or more, or 0 to keep"),
  ("train.nan_policy", "bogus", "train.nan_policy is 'bogus'; use one of stop, rollback"),
  ("train.nan_max_rollbacks", -1, "train.nan_max_rollbacks is -1; set it to 0 or more"),
  ("train.train_feeder.batch_size", None, "train.train_feeder.batch_size is None; set it to a whole number"),
  ("train.train_feeder.shuffle_buffer_size", None, "train.train_feeder.shuffle_buffer_size is None"),
  ("train.train_feeder.num_parallel_reads", None, "train.train_feeder.num_parallel_reads is None"),
  ("runtime.max_index_bytes", None, "runtime.max_index_bytes is None; set it to a whole number"),
]


@pytest.mark.parametrize("key, value, message", REFUSED_BY_CHECK_CONFIG)
def test_check_config_refuses_in_one_line(toy_config, key, value, message):
  _set(toy_config, key, value)
  with pytest.raises(UserError) as error:
    check_config(toy_config)
  assert str(error.value).startswith(message)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize(
  "key", ["train.log_step_count_steps", "train.validation_steps", "train.validation_secs"]
)
def test_check_config_accepts_none_where_the_defaults_declare_it_optional(toy_config, key):
  _set(toy_config, key, None)
  check_config(toy_config)


@pytest.mark.parametrize("seed", [0, 2**32 - 1])
def test_check_config_accepts_the_ends_of_the_seed_range(toy_config, seed):
  toy_config.runtime.seed = seed
  check_config(toy_config)


# Refused while the feeders or the model are built: (key, value, message).
REFUSED_WHILE_BUILDING = [
  ("train.train_feeder.shuffle_buffer_size", 0, "feeder shuffle_buffer_size is 0; set it to 1 or more"),
  ("train.train_feeder.shuffle_buffer_size", -1, "feeder shuffle_buffer_size is -1; set it to 1 or more"),
  ("train.train_feeder.file_patterns", [5], "feeder file_patterns holds 5; each entry must be"),
  ("model.learning_rate", None, "model.learning_rate is None; set it to a number such as 0.001"),
  ("model.hidden_neurons", -1, "model.hidden_neurons is -1; set it to 1 or more"),
]


@pytest.mark.parametrize("key, value, message", REFUSED_WHILE_BUILDING)
def test_training_refuses_in_one_line(toy_config, key, value, message):
  _set(toy_config, key, value)
  with pytest.raises(UserError, match="^.*" + message.replace("(", r"\(").replace(".", r"\.")) as error:
    train_and_evaluate(toy_config)
  assert "\n" not in str(error.value)


def test_a_shuffle_buffer_size_of_0_is_fine_without_shuffling():
  check_feeder_keys(
    file_patterns=["x"], batch_size=1, features_map={"x": {}}, shuffle=False, shuffle_buffer_size=0,
    max_examples=-1, num_parallel_maps=None, prefetch=None,
  )  # fmt: skip


def test_seed_0_trains_with_a_shuffling_feeder(toy_config):
  # TensorFlow's seed helper used to fail on the epoch's tensor seed under a global seed of 0.
  assert toy_config.train.train_feeder.shuffle is True
  toy_config.runtime.seed = 0
  toy_config.train.epochs = 2
  train_and_evaluate(toy_config)
  assert os.path.exists(os.path.join(toy_config.model.model_dir, "model.ckpt-2.index"))


def _error_line(result):
  """The one `deephub: error:` line (`deep` prints a `deephub: training` line first)."""
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines() if line.startswith("deephub: error:")]
  assert len(lines) == 1, result.stderr[-3000:]
  return lines[0]


@pytest.mark.parametrize("cli", ["deep", "deephub.train"])
def test_a_negative_seed_is_one_line_and_writes_nothing_through_the_cli(tmp_path, cli):
  model_dir = tmp_path / "m"
  if cli == "deep":
    result = run_deep(
      "trainer", "train", "toy", "-p", "runtime.seed", "-1", "-p", "model.model_dir", str(model_dir)
    )
  else:
    result = run_cli("--variant=toy", "--config.runtime.seed=-1", f"--config.model.model_dir={model_dir}")
  assert _error_line(result) == (
    "deephub: error: runtime.seed is -1; set it to a whole number from 0 to 2**32 - 1 (4294967295)"
  )
  assert not model_dir.exists()

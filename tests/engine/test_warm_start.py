"""Warm start: selection rules (table-driven) and real runs between model_dirs."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine import train_and_evaluate
from deephub.engine.warm_start import resolve_checkpoint, select
from deephub.errors import UserError


def _variables():
  return {
    "toy/w1": tf.Variable(1.0),
    "toy/b1": tf.Variable(2.0),
    "head/w": tf.Variable(3.0),
    "toy/count": tf.Variable(0.0, trainable=False),
  }


@pytest.mark.parametrize(
  "regex, name_map, expected",
  [
    (".*", {}, {"toy/w1": "toy/w1", "toy/b1": "toy/b1", "head/w": "head/w"}),  # Trainable only.
    ("toy/", {}, {"toy/w1": "toy/w1", "toy/b1": "toy/b1"}),
    ("w", {}, {}),  # re.match anchors at the start, as TF1 collections did.
    ("toy/w1", {"toy/w1": "old/w1"}, {"toy/w1": "old/w1"}),
    ("toy/(w1|b1)$", {"toy/b1": "b"}, {"toy/w1": "toy/w1", "toy/b1": "b"}),
  ],
)
def test_select(regex, name_map, expected):
  if not expected:
    with pytest.raises(UserError, match="matches no trainable variable; they are toy/w1, toy/b1, head/w"):
      select(_variables(), regex, name_map)
  else:
    assert select(_variables(), regex, name_map) == expected


@pytest.mark.parametrize(
  "regex, name_map, error",
  [
    ("toy/count", {}, "matches no trainable variable"),
    ("(", {}, "is not a regex"),
    ("toy/", {"head/w": "x"}, "names head/w, which the regex does not warm-start"),
  ],
)
def test_select_errors(regex, name_map, error):
  with pytest.raises(UserError, match=error):
    select(_variables(), regex, name_map)


def test_resolve_checkpoint_errors(tmp_path):
  with pytest.raises(UserError, match="holds no checkpoint"):
    resolve_checkpoint(str(tmp_path))
  with pytest.raises(UserError, match="no .*model.ckpt-3.index"):
    resolve_checkpoint(str(tmp_path / "model.ckpt-3"))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  """A toy model_dir trained 3 steps: the warm-start checkpoint."""
  from deephub.config import variants

  config = variants.load_variant("toy")
  config.model.model_dir = str(tmp_path_factory.mktemp("source"))
  config.train.epochs = 3
  train_and_evaluate(config)
  return tf.train.load_checkpoint(config.model.model_dir), config.model.model_dir


def test_warm_starts_trainable_variables_only(toy_config, source, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  reader, source_dir = source
  toy_config.train.epochs = 1
  toy_config.model.learning_rate = 0.0  # The one step keeps the warm-started values.
  toy_config.train.warm_start_check_point = source_dir
  toy_config.train.warm_start_variables_regex = "toy/w"
  train_and_evaluate(toy_config)
  warm = tf.train.load_checkpoint(toy_config.model.model_dir)
  assert warm.get_tensor("global_step") == 1  # The step is not carried over.
  for key in ("toy/w1", "toy/w2"):
    np.testing.assert_array_equal(warm.get_tensor(key), reader.get_tensor(key))
  np.testing.assert_array_equal(warm.get_tensor("toy/b2"), np.zeros(100))  # Not selected.
  assert not np.allclose(warm.get_tensor("toy/w2/Adam_1"), reader.get_tensor("toy/w2/Adam_1"))
  assert "like the optimizer state and global_step): toy/b1, toy/b2" in caplog.text


def test_warm_start_with_renamed_variable_and_checkpoint_prefix(toy_config, source):
  reader, source_dir = source
  toy_config.train.epochs = 1
  toy_config.model.learning_rate = 0.0
  toy_config.train.warm_start_check_point = f"{source_dir}/model.ckpt-3"
  toy_config.train.warm_start_variables_regex = "toy/b1"
  toy_config.train.warm_start_var_name_map = {"toy/b1": "toy/b1/Adam"}  # Any same-shape tensor.
  train_and_evaluate(toy_config)
  warm = tf.train.load_checkpoint(toy_config.model.model_dir)
  np.testing.assert_array_equal(warm.get_tensor("toy/b1"), reader.get_tensor("toy/b1/Adam"))


def test_warm_start_skipped_when_model_dir_has_a_checkpoint(toy_config, source):
  _, source_dir = source
  toy_config.train.epochs = 1
  train_and_evaluate(toy_config)
  own = tf.train.load_checkpoint(toy_config.model.model_dir).get_tensor("toy/w1")
  toy_config.train.epochs = 2
  toy_config.model.learning_rate = 0.0
  toy_config.train.warm_start_check_point = source_dir
  train_and_evaluate(toy_config)  # Resumes its own step 1; the warm start is ignored.
  np.testing.assert_array_equal(
    tf.train.load_checkpoint(toy_config.model.model_dir).get_tensor("toy/w1"), own
  )


@pytest.mark.parametrize(
  "name_map, error",
  [({"toy/w1": "missing/w1"}, "has no 'missing/w1' for variable 'toy/w1'"),
   ({"toy/w1": "toy/w2"}, "'toy/w2' in .* has shape \\[50, 100\\], variable 'toy/w1' \\[1, 50\\]")],
)  # fmt: skip
def test_warm_start_checkpoint_mismatch(toy_config, source, name_map, error):
  toy_config.train.warm_start_check_point = source[1]
  toy_config.train.warm_start_var_name_map = name_map
  with pytest.raises(UserError, match=error):
    train_and_evaluate(toy_config)

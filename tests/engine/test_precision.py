"""Mixed precision: half-precision compute, float32 variables and checkpoints."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from deephub.engine import precision, train_and_evaluate
from deephub.errors import UserError
from deephub.models.registry.toy import DebugToyModel
from tests.conftest import read_scalars


@pytest.fixture(autouse=True)
def _reset_policy():
  yield
  keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize(
  "policy, compute", [("float32", tf.float32), ("mixed_float16", tf.float16), ("mixed_bfloat16", tf.bfloat16)]
)
def test_policy_sets_compute_dtype_and_keeps_float32_variables(policy, compute):
  precision.set_policy(policy)
  model = DebugToyModel(
    num_classes=3, learning_rate=0.1, hidden_neurons=4, feature_names=["x"], label_names=["y"]
  )
  outputs = model({"x": tf.constant([1, 2])}, training=True)
  assert outputs["logits"].dtype == compute
  assert {v.dtype for v in model.named_variables().values()} == {"float32"}
  assert precision.float32_outputs(outputs)["logits"].dtype == tf.float32


@pytest.mark.parametrize(
  "policy, scaled", [("float32", False), ("mixed_float16", True), ("mixed_bfloat16", False)]
)
def test_only_float16_gets_loss_scaling(policy, scaled):
  optimizer = precision.wrap_optimizer(keras.optimizers.Adam(), policy)
  assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == scaled


def test_unknown_policy_names_the_choices():
  with pytest.raises(
    UserError, match="runtime.mixed_precision is 'float16'; use one of float32, mixed_float16"
  ):
    precision.set_policy("float16")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_trains_toy_with_float32_checkpoints(toy_config, policy):
  toy_config.runtime.mixed_precision = policy
  toy_config.train.epochs = 4
  train_and_evaluate(toy_config)
  model_dir = toy_config.model.model_dir
  reader = tf.train.load_checkpoint(model_dir)
  dtypes = reader.get_variable_to_dtype_map()
  loss_scale_keys = {"current_loss_scale", "good_steps"}
  assert (loss_scale_keys <= set(dtypes)) == (policy == "mixed_float16")
  for key in ("toy/w1", "toy/b2", "toy/w2/Adam", "toy/w2/Adam_1", "beta1_power"):
    assert dtypes[key] == tf.float32, key
  assert reader.get_tensor("global_step") == 4
  if policy == "mixed_float16":
    # 2**15 is Keras' initial scale; finite toy gradients never halve it in 4 steps.
    assert reader.get_tensor("current_loss_scale") == 2.0**15
    assert reader.get_tensor("good_steps") == 4
  loss = read_scalars(model_dir)["loss"]
  assert loss[1] == pytest.approx(np.log(100), rel=1e-2)  # Half precision rounds, loosely.
  assert loss[4] < loss[1]
  assert not np.allclose(reader.get_tensor("toy/w1"), 0.01)


def test_float16_run_resumes_with_its_loss_scale(toy_config):
  toy_config.runtime.mixed_precision = "mixed_float16"
  toy_config.train.epochs = 2
  train_and_evaluate(toy_config)
  toy_config.train.epochs = 3
  train_and_evaluate(toy_config)
  reader = tf.train.load_checkpoint(toy_config.model.model_dir)
  assert reader.get_tensor("global_step") == 3
  assert reader.get_tensor("good_steps") == 3  # Restored 2, plus one step.

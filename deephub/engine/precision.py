"""Mixed precision: the Keras dtype policy, loss scaling and their checkpoint keys.

`runtime.mixed_precision` sets Keras' global dtype policy before the model is
built, so layers compute in float16 or bfloat16 while their variables stay
float32: checkpoints keep the same keys and dtypes whatever the policy.
float16 also needs dynamic loss scaling (its range is too small for small
gradients); bfloat16 has float32's range and does not.
"""

from collections.abc import Mapping

import keras
import tensorflow as tf

from deephub.engine.checkpoint import Entry, optimizer_entries, variable_entry
from deephub.errors import UserError

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def set_policy(policy: str) -> None:
  """Makes `policy` Keras' global dtype policy for layers built from now on.

  Raises:
    UserError: an unknown policy name.
  """
  if policy not in POLICIES:
    raise UserError(f"runtime.mixed_precision is {policy!r}; use one of {', '.join(POLICIES)}")
  # Set even for float32: an earlier run in this process may have changed it.
  keras.mixed_precision.set_dtype_policy(policy)


def wrap_optimizer(optimizer: keras.optimizers.Optimizer, policy: str) -> keras.optimizers.Optimizer:
  """Adds dynamic loss scaling for float16; other policies train unscaled."""
  if policy == "mixed_float16":
    return keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def optimizer_state_entries(
  optimizer: keras.optimizers.Optimizer, variables: Mapping[str, tf.Variable]
) -> dict[str, Entry]:
  """Checkpoint entries of the optimizer state, loss scale included.

  The loss scale keeps the names TF1's DynamicLossScale gave it
  (`current_loss_scale`, `good_steps`); the wrapped optimizer's slots keep
  their TF1 names, so a float32 run can resume a float16 one's weights and
  slots (it ignores the two loss-scale keys).
  """
  if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    return optimizer_entries(optimizer, variables)
  entries = optimizer_entries(optimizer.inner_optimizer, variables)
  entries["current_loss_scale"] = variable_entry(optimizer.dynamic_scale)
  entries["good_steps"] = variable_entry(optimizer.step_counter)
  return entries


def float32_outputs(outputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """Casts floating model outputs to float32, so losses and metrics never run in half precision."""
  return {
    name: tf.cast(value, tf.float32) if value.dtype.is_floating else value for name, value in outputs.items()
  }

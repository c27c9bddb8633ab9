"""Learning-rate schedules from the legacy model params.

A model passes its optional schedule params to `learning_rate_schedule` and
hands the result to its Keras optimizer. At most one family may be set:

  exponential decay   num_steps_per_decay, learning_rate_decay_factor [, staircase]:
                      lr * factor ** (step / num_steps_per_decay)
  piecewise constant  piecewise_lr_boundaries [b0, b1, ...], piecewise_lr_values
                      [v0, v1, ...] (one more value than boundaries): v0 up to
                      and including step b0, v1 up to b1, ...
  cyclical cosine     min_lr, max_lr, cycle_size_steps: from max_lr down to
                      min_lr along half a cosine, restarting every cycle.

None set gives the constant `learning_rate`. The step is the optimizer's
update count (the global step before the update).
"""

import math

import keras
import tensorflow as tf

from deephub.errors import UserError

LearningRate = float | keras.optimizers.schedules.LearningRateSchedule


class CyclicalCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Cosine from `max_lr` at the start of each cycle of `cycle_size_steps` down towards `min_lr`."""

  def __init__(self, *, min_lr: float, max_lr: float, cycle_size_steps: int):
    if not min_lr < max_lr:
      raise UserError(f"model.min_lr ({min_lr}) must be smaller than model.max_lr ({max_lr})")
    if cycle_size_steps < 1:
      raise UserError(f"model.cycle_size_steps is {cycle_size_steps}; set it to 1 or more")
    self.min_lr = float(min_lr)
    self.max_lr = float(max_lr)
    self.cycle_size_steps = int(cycle_size_steps)

  def __call__(self, step):
    position = tf.math.floormod(tf.cast(step, tf.float32), float(self.cycle_size_steps))
    fraction = position / float(self.cycle_size_steps)
    return self.min_lr + 0.5 * (1.0 + tf.cos(math.pi * fraction)) * (self.max_lr - self.min_lr)

  def get_config(self) -> dict:
    return {"min_lr": self.min_lr, "max_lr": self.max_lr, "cycle_size_steps": self.cycle_size_steps}


def _check_number(learning_rate) -> None:
  # Keras' own error for None or a string is a traceback; NaN stays allowed
  # (it ends in the engine's one-line non-finite loss error).
  if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
    raise UserError(f"model.learning_rate is {learning_rate!r}; set it to a number such as 0.001")


def learning_rate_schedule(
  learning_rate: float,
  *,
  num_steps_per_decay: int | None = None,
  learning_rate_decay_factor: float | None = None,
  staircase: bool = False,
  piecewise_lr_boundaries: list[int] | None = None,
  piecewise_lr_values: list[float] | None = None,
  min_lr: float | None = None,
  max_lr: float | None = None,
  cycle_size_steps: int | None = None,
) -> LearningRate:
  """Returns `learning_rate`, or the one schedule family whose params are set.

  Raises:
    UserError: params of two families, an incomplete or invalid family, or
      a learning_rate that is no number where it is used.
  """
  families = {
    "exponential decay": {
      "num_steps_per_decay": num_steps_per_decay,
      "learning_rate_decay_factor": learning_rate_decay_factor,
    },
    "piecewise constant": {
      "piecewise_lr_boundaries": piecewise_lr_boundaries,
      "piecewise_lr_values": piecewise_lr_values,
    },
    "cyclical cosine": {"min_lr": min_lr, "max_lr": max_lr, "cycle_size_steps": cycle_size_steps},
  }
  chosen = [name for name, params in families.items() if any(v is not None for v in params.values())]
  if len(chosen) > 1:
    raise UserError(f"model sets params of {' and '.join(chosen)} learning-rate schedules; keep one")
  if not chosen or chosen[0] == "exponential decay":  # The families that start from learning_rate.
    _check_number(learning_rate)
  if not chosen:
    return learning_rate
  missing = [f"model.{key}" for key, value in families[chosen[0]].items() if value is None]
  if missing:
    raise UserError(f"the {chosen[0]} learning-rate schedule also needs {', '.join(missing)}")
  if chosen[0] == "exponential decay":
    if num_steps_per_decay < 1:
      raise UserError(f"model.num_steps_per_decay is {num_steps_per_decay}; set it to 1 or more")
    return keras.optimizers.schedules.ExponentialDecay(
      learning_rate, num_steps_per_decay, learning_rate_decay_factor, staircase=staircase
    )
  if chosen[0] == "piecewise constant":
    if len(piecewise_lr_values) != len(piecewise_lr_boundaries) + 1:
      raise UserError(
        f"model.piecewise_lr_values has {len(piecewise_lr_values)} values for "
        f"{len(piecewise_lr_boundaries)} boundaries; give one value more than boundaries"
      )
    return keras.optimizers.schedules.PiecewiseConstantDecay(
      [int(b) for b in piecewise_lr_boundaries], [float(v) for v in piecewise_lr_values]
    )
  return CyclicalCosineDecay(min_lr=min_lr, max_lr=max_lr, cycle_size_steps=cycle_size_steps)


def applied_learning_rate(learning_rate: LearningRate, optimizer: keras.optimizers.Optimizer) -> tf.Tensor:
  """The learning rate of the update the optimizer has just applied (call after `apply_gradients`)."""
  if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
    return tf.cast(learning_rate(optimizer.iterations - 1), tf.float32)
  return tf.cast(optimizer.learning_rate, tf.float32)

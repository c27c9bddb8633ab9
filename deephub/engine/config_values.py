"""Checks of single config values that would otherwise fail deep inside Keras or tf.data.

`schedule.check_config` calls these before anything is built or written, so
a bad value is one `UserError` line naming the key, the value and what to set
instead, and model_dir stays as it was.
"""

import ml_collections
from ml_collections import config_dict

from deephub.config import defaults
from deephub.errors import UserError

# numpy's, Python's and Keras' random generators take seeds that fit in 32 bits.
SEED_MAX = 2**32 - 1
# What train.nan_policy takes (actions.RollBack).
_NAN_POLICIES = ("stop", "rollback")
# How a None's message names what the key takes instead.
_KINDS = {bool: "True or False", int: "a whole number", float: "a number", str: "a string", list: "a list"}


def check_no_none(config: ml_collections.ConfigDict) -> None:
  """Refuses None for a key that deephub/config/defaults.py does not declare `optional`.

  ml-collections lets None replace any value (`-p train.epochs None`, a YAML
  `null`), and the engine then fails on arithmetic with it. Keys only the
  variant defines (the model's parameters) are the model class's to check.

  Raises:
    UserError: naming the first such key and its default.
  """
  _check_no_none(config, defaults.base_config(), prefix="")


def _check_no_none(
  section: ml_collections.ConfigDict, spec: ml_collections.ConfigDict, *, prefix: str
) -> None:
  for key, default in spec.items(preserve_field_references=True):
    if key not in section:
      continue
    value = section[key]
    if isinstance(default, ml_collections.ConfigDict):
      if isinstance(value, ml_collections.ConfigDict):
        _check_no_none(value, default, prefix=f"{prefix}{key}.")
      continue
    # `optional(...)` fields may be None; the one `object` field (a feeder's
    # shuffle) is a FieldReference too, but only to hold a bool or a word.
    nullable = isinstance(default, config_dict.FieldReference) and default.get_type() is not object
    if value is None and not nullable:
      shown = default.get() if isinstance(default, config_dict.FieldReference) else default
      kind = _KINDS.get(type(shown), f"a {type(shown).__name__}")
      raise UserError(f"{prefix}{key} is None; set it to {kind} (the default is {shown!r})")


def check_runtime(runtime: ml_collections.ConfigDict) -> None:
  """Validates the `runtime` values that Keras and tf.data would refuse with a traceback.

  Raises:
    UserError: a seed that is no whole number from 0 to 2**32 - 1.
  """
  seed = runtime.seed
  if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
    raise UserError(f"runtime.seed is {seed!r}; set it to a whole number from 0 to 2**32 - 1 ({SEED_MAX})")


def check_train_values(train: ml_collections.ConfigDict) -> None:
  """Validates the `train` values other than the periods (those are schedule.check_schedule's).

  Raises:
    UserError: a negative keep_checkpoint_max, an unknown nan_policy or a
      negative nan_max_rollbacks (both would only surface at the first NaN).
  """
  if train.nan_policy not in _NAN_POLICIES:
    raise UserError(f"train.nan_policy is {train.nan_policy!r}; use one of {', '.join(_NAN_POLICIES)}")
  if train.nan_max_rollbacks < 0:
    raise UserError(f"train.nan_max_rollbacks is {train.nan_max_rollbacks}; set it to 0 or more")
  keep = train.keep_checkpoint_max
  if keep is not None and keep < 0:
    raise UserError(
      f"train.keep_checkpoint_max is {keep}; set it to 1 or more, or 0 to keep every checkpoint"
    )

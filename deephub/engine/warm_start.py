"""Warm start: initialise a fresh run's variables from another checkpoint.

Mirrors `tf.estimator.WarmStartSettings` with a single regex: only trainable
variables whose name matches (`re.match`, as TF1 collections did) are
copied, optimizer state and `global_step` are not, and it happens only when
model_dir has no checkpoint of its own yet (the caller checks that). A
source folder gives its newest checkpoint that reads; damaged newer ones are
passed over with a warning, as on resume.
"""

import re
from collections.abc import Mapping

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from deephub.engine import checkpoint_files
from deephub.errors import UserError

_KEY = "train.warm_start_check_point"


def resolve_checkpoint(path: str, *, key: str = _KEY) -> str:
  """Returns the checkpoint prefix for a checkpoint prefix or a model_dir.

  A folder gives its newest checkpoint whose index reads; `read_source`
  also reads the tensors.

  Raises:
    UserError: the folder holds no readable checkpoint, or no checkpoint has that prefix.
  """
  if tf.io.gfile.isdir(path):
    found = checkpoint_files.restore_newest(
      path, lambda prefix: tf.train.load_checkpoint(prefix), what=key, fix=_FIX
    )
    if found is None:
      raise UserError(f"{key}: folder {path} holds no checkpoint; point it at a trained model_dir")
    return found.prefix
  if not tf.io.gfile.exists(f"{path}.index"):
    raise UserError(
      f"{key}: no checkpoint {path} (no {path}.index); use a model_dir or a model.ckpt-N prefix"
    )
  return path


_FIX = "point train.warm_start_check_point at a readable checkpoint"


def read_source(
  path: str, names: Mapping[str, str], variables: Mapping[str, tf.Variable]
) -> tuple[str, dict]:
  """Reads the warm-start tensors {variable name: value} from a checkpoint prefix or folder.

  A folder gives its newest checkpoint whose selected tensors read; a
  damaged one is passed over with a warning. A prefix must read itself.

  Returns:
    The checkpoint prefix and the values by variable name.

  Raises:
    UserError: nothing readable there, or a selected tensor is missing or
      has another shape.
  """

  def read(prefix: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    for name, source in names.items():
      if source not in shapes:
        raise UserError(
          f"warm start: {prefix} has no {source!r} for variable {name!r}; map it with "
          f"train.warm_start_var_name_map or narrow train.warm_start_variables_regex"
        )
      if list(shapes[source]) != list(variables[name].shape):
        raise UserError(
          f"warm start: {source!r} in {prefix} has shape {shapes[source]}, variable {name!r} "
          f"{list(variables[name].shape)}; narrow train.warm_start_variables_regex"
        )
    return {name: reader.get_tensor(source) for name, source in names.items()}

  if tf.io.gfile.isdir(path):
    found = checkpoint_files.restore_newest(path, read, what=_KEY, fix=_FIX)
    if found is None:
      raise UserError(f"{_KEY}: folder {path} holds no checkpoint; point it at a trained model_dir")
    return found.prefix, found.value
  prefix = resolve_checkpoint(path)
  try:
    return prefix, read(prefix)
  except tf.errors.OpError as error:
    raise UserError(
      f"{_KEY}: checkpoint {prefix} is damaged ({checkpoint_files.first_line(error.message)}); {_FIX}"
    ) from None


def select(
  variables: Mapping[str, tf.Variable], regex: str, var_name_map: Mapping[str, str]
) -> dict[str, str]:
  """Returns {variable name: name in the checkpoint} for the variables to warm-start.

  Raises:
    UserError: the regex is invalid or matches no trainable variable, or the
      name map names a variable that is not warm-started.
  """
  try:
    pattern = re.compile(regex)
  except re.error as error:
    raise UserError(f"train.warm_start_variables_regex {regex!r} is not a regex: {error}") from None
  trainable = [name for name, variable in variables.items() if variable.trainable]
  chosen = [name for name in trainable if pattern.match(name)]
  if not chosen:
    raise UserError(
      f"train.warm_start_variables_regex {regex!r} matches no trainable variable; "
      f"they are {', '.join(trainable)}"
    )
  unused = sorted(set(var_name_map) - set(chosen))
  if unused:
    raise UserError(
      f"train.warm_start_var_name_map names {', '.join(unused)}, which the regex does not "
      f"warm-start; keys are this model's names, one of {', '.join(chosen)}"
    )
  return {name: var_name_map.get(name, name) for name in chosen}


def warm_start(train: ml_collections.ConfigDict, variables: Mapping[str, tf.Variable]) -> dict[str, str]:
  """Assigns the selected variables from `train.warm_start_check_point`.

  Args:
    train: the `train` config section (warm_start_* keys).
    variables: the model's variables by checkpoint name.

  Returns:
    {variable name: checkpoint name} of what was warm-started; {} when
    `train.warm_start_check_point` is empty.

  Raises:
    UserError: no such checkpoint, nothing selected, or a selected variable is
      missing from the checkpoint or has another shape there.
  """
  if not train.warm_start_check_point:
    return {}
  names = select(variables, train.warm_start_variables_regex, dict(train.warm_start_var_name_map))
  prefix, values = read_source(train.warm_start_check_point, names, variables)
  for name, value in values.items():
    variables[name].assign(tf.cast(value, variables[name].dtype))
  skipped = sorted(set(variables) - set(names))
  logging.info(
    "Warm-started from %s: %s",
    prefix,
    ", ".join(name if name == source else f"{name} <- {source}" for name, source in names.items()),
  )
  logging.info(
    "Not warm-started (initialised fresh, like the optimizer state and global_step): %s",
    ", ".join(skipped) or "(none)",
  )
  return names

"""Turns a legacy `features_map` config into `tf.io` parsing specs."""

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from deephub.errors import UserError

_DTYPES = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}
_TYPES = ("FixedLenFeature", "VarLenFeature")


def parsing_spec(features_map: Mapping[str, Mapping[str, Any]], *, where: str) -> dict:
  """Returns `{name: tf.io.FixedLenFeature | tf.io.VarLenFeature}`.

  Args:
    features_map: `{name: {type, shape, dtype}}` as in the feeder config.
    where: config path of the map, used in error messages.

  Raises:
    UserError: an entry names an unknown type or dtype.
  """
  spec = {}
  for name, entry in features_map.items():
    entry = dict(entry)
    kind = entry.get("type", "FixedLenFeature")
    dtype = entry.get("dtype")
    if kind not in _TYPES:
      raise UserError(f"{where}.{name}.type is {kind!r}; use one of {', '.join(_TYPES)}")
    if dtype not in _DTYPES:
      raise UserError(f"{where}.{name}.dtype is {dtype!r}; use one of {', '.join(_DTYPES)}")
    if kind == "VarLenFeature":
      spec[name] = tf.io.VarLenFeature(_DTYPES[dtype])
    else:
      spec[name] = tf.io.FixedLenFeature(list(entry.get("shape", [])), _DTYPES[dtype])
  return spec

"""What a SavedModel's serving signatures take: the config's features_map, or one read off the train feeder.

Exports serve serialized `tf.Example`s, parsed with a `features_map`. With
data from files that is `train.train_feeder.features_map`, as in Estimator
days. A feeder object given to `train_and_evaluate` (in-memory arrays, a
user's class) replaces the configured feeder, so the config's map may be
empty or lack the feeder's features (a variant's own data); the feeder's batches
then give the map: each feature a FixedLenFeature of its per-example shape,
in the dtype a tf.Example carries (int64, float32 or bytes), cast back to
the trained dtype before the model sees it.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import tensorflow as tf
from absl import logging

from deephub.errors import UserError
from deephub.io.feeder import Feeder

FEATURES_KEY = "train.train_feeder.features_map"


@dataclasses.dataclass(frozen=True)
class ServingInputs:
  """The serving signatures' features.

  Attributes:
    features_map: `{name: entry}` in the feeder config's form (features.py).
    dtypes: `{name: dtype}` of features the model was trained on in another
      dtype than the tf.Example holds (float64, int32, bool...); the parsed
      values are cast to it. Empty for a configured features_map.
  """

  features_map: Mapping[str, Any]
  dtypes: Mapping[str, tf.DType] = dataclasses.field(default_factory=dict)


def serving_inputs(features_map: Mapping[str, Any], feeder: Feeder | None = None) -> ServingInputs:
  """The configured features_map when it holds the feeder's features (or without a feeder), else the feeder's.

  A configured map with more entries than the feeder has features is kept,
  as Estimator-era exports parsed every entry.

  Args:
    features_map: `train.train_feeder.features_map`.
    feeder: the feeder the model was trained on; None in the export mode
      without one.

  Raises:
    UserError: no feeder and an empty features_map, or a feeder feature that
      a tf.Example cannot carry as a FixedLenFeature.
  """
  if feeder is None or set(feeder.feature_names) <= set(features_map):
    if not features_map:
      raise UserError(
        f"{FEATURES_KEY} is empty; an export needs the features the model was trained on: set it "
        "(trained from a feeder object: set train.exporters.final.name before training, or call "
        "deephub.engine.export(config, train_feeder=feeder))"
      )
    return ServingInputs(features_map)
  if features_map:
    logging.info(
      "%s has %s but the train feeder gives %s; exports serve the feeder's features",
      FEATURES_KEY,
      sorted(features_map),
      sorted(feeder.feature_names),
    )
  element_spec = feeder.dataset(epochs=1).element_spec
  specs = element_spec[0] if isinstance(element_spec, tuple) else element_spec
  return from_feature_specs({name: specs[name] for name in feeder.feature_names})


def from_feature_specs(specs: Mapping[str, tf.TypeSpec]) -> ServingInputs:
  """A features_map of FixedLenFeatures from batched feature specs (`[batch, *shape]`).

  Raises:
    UserError: a feature that is sparse, ragged, of unknown shape per
      example, or of a dtype no tf.Example list holds (complex).
  """
  features_map, dtypes = {}, {}
  for name, spec in specs.items():
    shape = spec.shape[1:] if isinstance(spec, tf.TensorSpec) else None
    if shape is None or not shape.is_fully_defined():
      raise _not_servable(name, f"has no fixed shape per example ({spec})")
    dtype = _example_dtype(spec.dtype)
    if dtype is None:
      raise _not_servable(name, f"is {spec.dtype.name}, which no tf.Example feature holds")
    features_map[name] = {"type": "FixedLenFeature", "shape": shape.as_list(), "dtype": dtype.name}
    if spec.dtype != dtype:
      dtypes[name] = spec.dtype
  return ServingInputs(features_map, dtypes)


def _example_dtype(dtype: tf.DType) -> tf.DType | None:
  """The dtype of the tf.Example list holding `dtype`: float_list, int64_list or bytes_list."""
  if dtype.is_floating:
    return tf.float32
  if dtype.is_integer or dtype.is_bool:
    return tf.int64
  if dtype == tf.string:
    return tf.string
  return None


def _not_servable(name: str, problem: str) -> UserError:
  return UserError(
    f"train feeder feature {name!r} {problem}; set {FEATURES_KEY} to the tf.Example features to serve"
  )

"""SavedModels for serving, written so a serving system never sees half of one.

Two signatures, as an Estimator export with a parsing receiver had:
- `serving_default`: `examples`, a batch of serialized `tf.Example` strings,
  parsed with the train feeder's `features_map`, or one read off a feeder
  object (serving_inputs.py) (TF Serving's Classify/Predict with examples,
  `saved_model_cli --input_examples`);
- `predict_raw`: the feature tensors themselves, one input per feature (an
  image as its encoded bytes, as the records hold it; both signatures decode
  it as the feeder does).
Both return the model's `predictions(...)` (the toy model: `classes`,
`probabilities`).
"""

import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from deephub.errors import UserError
from deephub.io.features import decoded_specs, decoders, parsing_spec
from deephub.models.base import Model

EXAMPLES_INPUT = "examples"
RAW_SIGNATURE = "predict_raw"


class ServingModule(tf.Module):
  """The model's variables plus the two serving functions."""

  def __init__(
    self, model: Model, features_map: Mapping[str, Any], *, dtypes: Mapping[str, tf.DType] | None = None
  ):
    """Args:
    model: a built model holding the weights to export.
    features_map: the train feeder's `features_map` (labels are not inputs).
    dtypes: `{name: dtype}` the model was trained on where it differs from
      the parsed one (in-memory float64 or int32 data); parsed and raw
      inputs are cast to it, so the model sees what it saw in training.

    Raises:
      UserError: the features_map is empty or invalid.
    """
    super().__init__(name="deephub_serving")
    if not features_map:
      raise UserError("train.train_feeder.features_map is empty; an export needs the model's input features")
    spec = parsing_spec(features_map, where="train.train_feeder.features_map")
    # The tf.Variables under the Keras 3 wrappers are what the functions
    # capture; tracking them is what puts them in the SavedModel.
    self.weights = [weight.value for weight in model.network.weights]

    casts = dict(dtypes or {})
    # Images come encoded, as in the records; the model saw them decoded.
    decode = decoders(features_map)

    def predict(features):
      features = {name: decode[name](v) if name in decode else v for name, v in features.items()}
      features = {name: tf.cast(v, casts[name]) if name in casts else v for name, v in features.items()}
      return model.predictions(model(features, training=False))

    def serve_examples(examples):
      return predict(tf.io.parse_example(examples, spec))

    names = raw_input_names(spec)

    def serve_raw(**arguments):
      return predict(_to_sparse({names[arg]: value for arg, value in arguments.items()}, spec))

    self.serve_examples = tf.function(
      serve_examples, input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)]
    )
    raw = {arg: _raw_spec(arg, spec[name]) for arg, name in names.items()}
    self.serve_raw = tf.function(serve_raw).get_concrete_function(**raw)

  def signatures(self) -> dict[str, Callable]:
    return {"serving_default": self.serve_examples.get_concrete_function(), RAW_SIGNATURE: self.serve_raw}


def model_input_specs(
  features_map: Mapping[str, Any], dtypes: Mapping[str, tf.DType] | None = None
) -> dict[str, tf.TypeSpec]:
  """The batched specs of the features serving hands the model.

  The export mode has no data: it builds the model from these before the
  restore, so that input-shaped variables (MLPClassifier) exist to restore into.
  """
  specs = {}
  decoded = decoded_specs(features_map)
  for name, feature in parsing_spec(features_map, where="train.train_feeder.features_map").items():
    dtype = (dtypes or {}).get(name, feature.dtype)
    if name in decoded:
      specs[name] = decoded[name]
    elif isinstance(feature, tf.io.VarLenFeature):
      specs[name] = tf.SparseTensorSpec([None, None], dtype)
    elif isinstance(feature, tf.io.FixedLenSequenceFeature):
      specs[name] = tf.TensorSpec([None, None, *feature.shape], dtype)
    else:
      specs[name] = tf.TensorSpec([None, *feature.shape], dtype)
  return specs


def raw_input_names(spec: Mapping[str, Any]) -> dict[str, str]:
  """The `predict_raw` signature's input names: `{input name: feature name}`.

  A Python argument cannot hold '/' (Estimator-era names like
  'image/encoded'), so every such character becomes '_'; a number keeps two
  that would clash apart.
  """
  names = {}
  for name in spec:
    argument = re.sub(r"\W", "_", name)
    if not argument.isidentifier():  # Starts with a digit.
      argument = f"_{argument}"
    unique, n = argument, 1
    while unique in names:
      n += 1
      unique = f"{argument}_{n}"
    names[unique] = name
  return names


def _raw_spec(name: str, feature) -> tf.TensorSpec:
  """A batch of one raw feature: [batch, *shape]; a VarLenFeature comes padded, [batch, None]."""
  if isinstance(feature, tf.io.VarLenFeature):
    return tf.TensorSpec([None, None], feature.dtype, name=name)
  return tf.TensorSpec([None, *feature.shape], feature.dtype, name=name)


def _to_sparse(features: Mapping[str, tf.Tensor], spec: Mapping[str, Any]) -> dict[str, Any]:
  """Gives VarLenFeatures the SparseTensor form the model sees in training.

  The raw input of a VarLenFeature is padded: zeros / empty strings are
  padding, as `tf.sparse.to_dense` would have produced.
  """
  return {
    name: tf.sparse.from_dense(value) if isinstance(spec[name], tf.io.VarLenFeature) else value
    for name, value in features.items()
  }


def write_saved_model(
  module: ServingModule, export_base: str, *, clock: Callable[[], float] = time.time
) -> str:
  """Writes `export_base/<unix seconds>/` via `export_base/temp-<seconds>/` and a rename.

  Returns:
    The final export folder. Its name is a fresh timestamp; an export within
    the same second takes the next free number, so names stay sortable.
  """
  tf.io.gfile.makedirs(export_base)
  stamp = int(clock())
  while tf.io.gfile.exists(os.path.join(export_base, str(stamp))):
    stamp += 1
  final = os.path.join(export_base, str(stamp))
  temp = os.path.join(export_base, f"temp-{stamp}")
  if tf.io.gfile.exists(temp):  # Left by a crash mid-export.
    tf.io.gfile.rmtree(temp)
  tf.saved_model.save(module, temp, signatures=module.signatures())
  tf.io.gfile.rename(temp, final)
  return final


def list_exports(export_base: str) -> list[str]:
  """Complete exports under `export_base`, oldest first (temp-* folders excluded)."""
  if not tf.io.gfile.isdir(export_base):
    return []
  stamps = sorted(
    int(name.strip("/")) for name in tf.io.gfile.listdir(export_base) if name.strip("/").isdigit()
  )
  return [os.path.join(export_base, str(stamp)) for stamp in stamps]

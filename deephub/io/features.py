"""Turns a legacy `features_map` config into `tf.io` parsing specs and batch decoders.

Entry types, named by `type` or (the later legacy spelling) `class_type`:
  FixedLenFeature          {shape, dtype, default_value}: one fixed-shape
                           value per example; an example without the
                           feature gets `default_value` (a scalar fills the
                           shape), and without one it is an error.
  VarLenFeature            {dtype}: a SparseTensor per batch.
  FixedLenSequenceFeature  {shape, dtype, default_value}: a variable number of
                           `shape`-shaped items, padded per batch with
                           `default_value` (0 / '' unless set).
  ImageFeature             {decode_format, channels, resize_height,
                           resize_width, enforced_dtype, standard_scaling}:
                           encoded image bytes decoded inside the batch parse.

An entry may also be a `tf.io.FixedLenFeature`, `VarLenFeature` or
`FixedLenSequenceFeature` object, as the old framework's Python users passed
them; `entry_config` turns it into the config form above.

Images are decoded by `tf.map_fn` over the batch of strings, a graph loop
of C++ kernels (no Python per image). Without `resize_height` /
`resize_width`, every image of a batch must have the same size.
"""

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from deephub.errors import UserError

_DTYPES = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}
_TYPES = ("FixedLenFeature", "VarLenFeature", "FixedLenSequenceFeature", "ImageFeature")
_IMAGE_FORMATS = ("auto", "jpeg", "png", "gif", "bmp")
_IMAGE_DTYPES = {"uint8": tf.uint8, "float32": tf.float32}
_IMAGE_KEYS = (
  "type", "decode_format", "channels", "resize_height", "resize_width", "enforced_dtype", "standard_scaling",
)  # fmt: skip


def entry_config(entry: Any, *, where: str) -> dict[str, Any]:
  """A features_map entry as a config dict: mappings as they are, `tf.io` feature objects converted.

  Raises:
    UserError: the entry is neither a mapping nor one of the three `tf.io` feature classes.
  """
  if isinstance(entry, Mapping) or hasattr(entry, "to_dict"):
    return dict(entry)
  if isinstance(entry, tf.io.FixedLenFeature | tf.io.FixedLenSequenceFeature):
    dtype = tf.as_dtype(entry.dtype).name
    config = {"type": type(entry).__name__, "shape": list(entry.shape), "dtype": dtype}
    if entry.default_value is not None:
      config["default_value"] = entry.default_value
    return config
  if isinstance(entry, tf.io.VarLenFeature):
    return {"type": "VarLenFeature", "dtype": tf.as_dtype(entry.dtype).name}
  raise UserError(
    f"{where} is a {type(entry).__name__}; give a mapping {{type, shape, dtype}} or a "
    "tf.io.FixedLenFeature, VarLenFeature or FixedLenSequenceFeature"
  )


def feature_configs(features_map: Mapping[str, Any], *, where: str) -> dict[str, dict[str, Any]]:
  """`{name: entry_config(entry)}` for a whole features_map / labels_map."""
  return {name: entry_config(entry, where=f"{where}.{name}") for name, entry in features_map.items()}


def parsing_spec(features_map: Mapping[str, Mapping[str, Any]], *, where: str) -> dict:
  """Returns `{name: tf.io.FixedLenFeature | VarLenFeature | FixedLenSequenceFeature}`.

  Args:
    features_map: `{name: {type, shape, dtype, ...}}` as in the feeder config.
    where: config path of the map, used in error messages.

  Raises:
    UserError: an entry names an unknown type, dtype or image option.
  """
  spec = {}
  for name, entry in features_map.items():
    entry = entry_config(entry, where=f"{where}.{name}")
    kind = feature_type(entry, where=f"{where}.{name}")
    if kind == "ImageFeature":
      _image_options(entry, where=f"{where}.{name}")
      spec[name] = tf.io.FixedLenFeature([], tf.string)  # The encoded bytes.
      continue
    dtype = entry.get("dtype")
    if dtype not in _DTYPES:
      raise UserError(f"{where}.{name}.dtype is {dtype!r}; use one of {', '.join(_DTYPES)}")
    shape = list(entry.get("shape", []))
    if kind == "VarLenFeature":
      spec[name] = tf.io.VarLenFeature(_DTYPES[dtype])
    elif kind == "FixedLenSequenceFeature":
      # parse_example accepts sequence features only with allow_missing=True;
      # short examples are padded with default_value.
      spec[name] = tf.io.FixedLenSequenceFeature(
        shape, _DTYPES[dtype], allow_missing=True, default_value=entry.get("default_value")
      )
    else:
      default = _fixed_default(entry.get("default_value"), shape, dtype, where=f"{where}.{name}")
      spec[name] = tf.io.FixedLenFeature(shape, _DTYPES[dtype], default_value=default)
  return spec


Spec = tf.io.FixedLenFeature | tf.io.VarLenFeature | tf.io.FixedLenSequenceFeature


@dataclasses.dataclass(frozen=True)
class ExampleSpec:
  """A feeder's `features_map` and `labels_map`, each entry read once (by `example_spec`).

  The feeders parse with it and the host-side checks (`deephub.io.validation`)
  compare records against it, so what an entry means is decided here only.

  Attributes:
    features: `{name: tf.io spec}` of features_map.
    labels: `{name: tf.io spec}` of labels_map (a name may be in both maps).
    decoders: `{name: batch decoder}` of the entries decoded after parsing (images).
    images: `(map name, name)` of each ImageFeature entry.
  """

  features: dict[str, Spec]
  labels: dict[str, Spec]
  decoders: dict[str, Callable[[tf.Tensor], tf.Tensor]]
  images: frozenset[tuple[str, str]]

  @property
  def feature_names(self) -> list[str]:
    return list(self.features)

  @property
  def label_names(self) -> list[str]:
    return list(self.labels)

  @property
  def parsing(self) -> dict[str, Spec]:
    """The `tf.io.parse_example` spec of both maps."""
    return {**self.features, **self.labels}

  @property
  def fixed_shapes(self) -> bool:
    """Every parsed value has one fixed shape per example, no decoding after: batches concatenate."""
    fixed = all(isinstance(spec, tf.io.FixedLenFeature) for spec in self.parsing.values())
    return fixed and not self.decoders

  def entries(self) -> Iterator[tuple[str, str, Spec]]:
    """`(map name, name, spec)` for every entry, features_map first."""
    for map_name, specs in (("features_map", self.features), ("labels_map", self.labels)):
      for name, spec in specs.items():
        yield map_name, name, spec

  def values_per_example(self, map_name: str, name: str, spec: Spec) -> int | None:
    """The values a record must hold for a fixed-length entry; None when any count parses.

    Images hold their encoded bytes and are checked by decoding; VarLen and
    sequence entries take any number of values.
    """
    if (map_name, name) in self.images or not isinstance(spec, tf.io.FixedLenFeature):
      return None
    return math.prod(spec.shape)


def example_spec(features_map: Mapping[str, Any], labels_map: Mapping[str, Any] | None) -> ExampleSpec:
  """Reads a feeder's maps (see `parsing_spec` and `decoders`): the one reading of both.

  Entries may be config mappings or `tf.io` feature objects (`entry_config`).
  A name may be both a feature and a label (the toy reads `number` as both),
  parsed once; it must then be read the same way in both maps.

  Raises:
    UserError: an entry names an unknown type, dtype or image option, is
      neither a mapping nor a `tf.io` feature, or a name in both maps is
      read differently in each.
  """
  # tf.io feature objects (the old Python API) become config entries once, here.
  features_map = feature_configs(features_map, where="features_map")
  labels_map = feature_configs(labels_map or {}, where="labels_map")
  # Specs first: they check every entry and name its config key in errors.
  features = parsing_spec(features_map, where="features_map")
  labels = parsing_spec(labels_map, where="labels_map")
  for name in features.keys() & labels.keys():
    if features[name] != labels[name]:
      raise UserError(
        f"features_map.{name} and labels_map.{name} read the same feature differently "
        f"({features[name]} vs {labels[name]}); make the two entries equal"
      )
  feature_decoders, label_decoders = decoders(features_map), decoders(labels_map)
  images = {("features_map", name) for name in feature_decoders}
  images |= {("labels_map", name) for name in label_decoders}
  return ExampleSpec(
    features=features,
    labels=labels,
    decoders={**feature_decoders, **label_decoders},
    images=frozenset(images),
  )


def feature_type(entry: Mapping[str, Any], *, where: str) -> str:
  """The entry's type: `type`, or `class_type` as the framework's later YAML files named it.

  Raises:
    UserError: an unknown type, or `type` and `class_type` naming different ones.
  """
  kind = entry.get("type")
  class_type = entry.get("class_type")
  if kind is not None and class_type is not None and kind != class_type:
    raise UserError(f"{where} sets type {kind!r} and class_type {class_type!r}; keep one of them")
  kind = kind if kind is not None else class_type if class_type is not None else "FixedLenFeature"
  if kind not in _TYPES:
    key = "type" if entry.get("type") is not None else "class_type"
    raise UserError(f"{where}.{key} is {kind!r}; use one of {', '.join(_TYPES)}")
  return kind


def _fixed_default(value: Any, shape: list, dtype: str, *, where: str) -> Any:
  """A FixedLenFeature's default_value, a scalar broadcast to `shape` (None: the feature is required)."""
  if value is None:
    return None
  values = np.asarray(value, dtype=_DTYPES[dtype].as_numpy_dtype if dtype != "string" else object)
  if values.ndim == 0:
    return np.full(shape, values.item(), dtype=values.dtype).tolist()
  if values.size != math.prod(shape):
    raise UserError(
      f"{where}.default_value has {values.size} values but shape {shape} needs {math.prod(shape)}; "
      "give one value (it fills the shape) or exactly that many"
    )
  return values.reshape(shape).tolist()


def decoders(features_map: Mapping[str, Mapping[str, Any]]) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
  """Returns `{name: batch_decoder}` for the entries that need decoding after parsing (images)."""
  images = _image_entries(features_map)
  return {name: _image_decoder(_image_spec(**options), **options) for name, options in images.items()}


def decoded_specs(features_map: Mapping[str, Mapping[str, Any]]) -> dict[str, tf.TensorSpec]:
  """Returns `{name: spec of a decoded batch}` for the entries `decoders` decodes (images)."""
  return {name: _image_spec(**options) for name, options in _image_entries(features_map).items()}


def _image_entries(features_map: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
  """`{name: checked ImageFeature options}` for the image entries of a map."""
  return {
    name: _image_options(entry_config(entry, where=name), where=name)
    for name, entry in features_map.items()
    if feature_type(entry_config(entry, where=name), where=name) == "ImageFeature"
  }


def _image_options(entry: dict, *, where: str) -> dict:
  """Checks an ImageFeature entry; returns its options with the legacy defaults filled in."""
  unknown = sorted(set(entry) - set(_IMAGE_KEYS) - {"class_type"})
  if unknown:
    raise UserError(f"{where} has unknown ImageFeature keys {unknown}; use {', '.join(_IMAGE_KEYS[1:])}")
  options = {
    "decode_format": entry.get("decode_format", "auto"),
    "channels": entry.get("channels", 3),
    "resize_height": entry.get("resize_height"),
    "resize_width": entry.get("resize_width"),
    "enforced_dtype": entry.get("enforced_dtype", "float32"),
    "standard_scaling": entry.get("standard_scaling", False),
  }
  if options["decode_format"] not in _IMAGE_FORMATS:
    raise UserError(
      f"{where}.decode_format is {options['decode_format']!r}; use one of {', '.join(_IMAGE_FORMATS)}"
    )
  if options["channels"] not in (0, 1, 3, 4):
    raise UserError(f"{where}.channels is {options['channels']!r}; use 0 (as stored), 1, 3 or 4")
  if (options["resize_height"] is None) != (options["resize_width"] is None):
    raise UserError(f"{where}: set both resize_height and resize_width, or neither")
  if options["enforced_dtype"] not in _IMAGE_DTYPES:
    raise UserError(
      f"{where}.enforced_dtype is {options['enforced_dtype']!r}; use one of {', '.join(_IMAGE_DTYPES)}"
    )
  if options["standard_scaling"] and options["enforced_dtype"] != "float32":
    raise UserError(f"{where}: standard_scaling needs enforced_dtype 'float32'")
  return options


def _image_spec(
  *,
  decode_format: str,
  channels: int,
  resize_height: int | None,
  resize_width: int | None,
  enforced_dtype: str,
  **_,
) -> tf.TensorSpec:
  """The spec of an image batch as `_image_decoder` gives it: [batch, h, w, c], h and w known if resized."""
  static_channels = (3 if decode_format == "gif" else channels) or None  # GIFs are always RGB.
  size = [resize_height, resize_width] if resize_height is not None else [None, None]
  return tf.TensorSpec([None, *size, static_channels], _IMAGE_DTYPES[enforced_dtype])


def _image_decoder(
  batch_spec: tf.TensorSpec,
  *,
  decode_format: str,
  channels: int,
  resize_height: int | None,
  resize_width: int | None,
  enforced_dtype: str,
  standard_scaling: bool,
) -> Callable[[tf.Tensor], tf.Tensor]:
  """Returns `decode(strings[batch]) -> images[batch, h, w, c]`, batches of `batch_spec` (`_image_spec`)."""
  dtype = _IMAGE_DTYPES[enforced_dtype]
  resize = resize_height is not None

  def decode_one(data: tf.Tensor) -> tf.Tensor:
    if decode_format == "jpeg":
      image = tf.io.decode_jpeg(data, channels=channels)
    elif decode_format == "png":
      image = tf.io.decode_png(data, channels=channels)
    elif decode_format == "bmp":
      image = tf.io.decode_bmp(data, channels=channels)
    elif decode_format == "gif":
      image = tf.io.decode_gif(data)[0]  # The first frame; GIFs are always RGB.
    else:
      image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    if resize:
      image = tf.image.resize(image, [resize_height, resize_width])  # float32, 0..255.
    if dtype == tf.float32:
      image = tf.cast(image, tf.float32) / 255.0
      if standard_scaling:
        image = (image - 0.5) * 2.0  # [0, 1] -> [-1, 1].
    elif resize:
      image = tf.saturate_cast(tf.round(image), tf.uint8)
    return image

  def decode(batch: tf.Tensor) -> tf.Tensor:
    return tf.map_fn(decode_one, batch, fn_output_signature=tf.TensorSpec(batch_spec.shape[1:], dtype))

  return decode

"""Turns a legacy `features_map` config into `tf.io` parsing specs and batch decoders.

Entry types:
  FixedLenFeature          {shape, dtype}: one fixed-shape value per example.
  VarLenFeature            {dtype}: a SparseTensor per batch.
  FixedLenSequenceFeature  {shape, dtype, default_value}: a variable number of
                           `shape`-shaped items, padded per batch with
                           `default_value` (0 / '' unless set).
  ImageFeature             {decode_format, channels, resize_height,
                           resize_width, enforced_dtype, standard_scaling}:
                           encoded image bytes decoded inside the batch parse.

Images are decoded by `tf.map_fn` over the batch of strings, a graph loop
of C++ kernels (no Python per image). Without `resize_height` /
`resize_width`, every image of a batch must have the same size.
"""

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import tensorflow as tf

from deephub.errors import UserError

_DTYPES = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}
_TYPES = ("FixedLenFeature", "VarLenFeature", "FixedLenSequenceFeature", "ImageFeature")
_IMAGE_FORMATS = ("auto", "jpeg", "png", "gif", "bmp")
_IMAGE_DTYPES = {"uint8": tf.uint8, "float32": tf.float32}
_IMAGE_KEYS = (
  "type", "decode_format", "channels", "resize_height", "resize_width", "enforced_dtype", "standard_scaling",
)  # fmt: skip


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
    entry = dict(entry)
    kind = entry.get("type", "FixedLenFeature")
    if kind not in _TYPES:
      raise UserError(f"{where}.{name}.type is {kind!r}; use one of {', '.join(_TYPES)}")
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
      spec[name] = tf.io.FixedLenFeature(shape, _DTYPES[dtype])
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


def example_spec(
  features_map: Mapping[str, Mapping[str, Any]], labels_map: Mapping[str, Mapping[str, Any]] | None
) -> ExampleSpec:
  """Reads a feeder's maps (see `parsing_spec` and `decoders`).

  Raises:
    UserError: an entry names an unknown type, dtype or image option.
  """
  labels_map = labels_map or {}
  # Specs first: they check every entry and name its config key in errors.
  features = parsing_spec(features_map, where="features_map")
  labels = parsing_spec(labels_map, where="labels_map")
  feature_decoders, label_decoders = decoders(features_map), decoders(labels_map)
  images = {("features_map", name) for name in feature_decoders}
  images |= {("labels_map", name) for name in label_decoders}
  return ExampleSpec(
    features=features,
    labels=labels,
    decoders={**feature_decoders, **label_decoders},
    images=frozenset(images),
  )


def decoders(features_map: Mapping[str, Mapping[str, Any]]) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
  """Returns `{name: batch_decoder}` for the entries that need decoding after parsing (images)."""
  return {
    name: _image_decoder(**_image_options(dict(entry), where=name))
    for name, entry in features_map.items()
    if dict(entry).get("type") == "ImageFeature"
  }


def _image_options(entry: dict, *, where: str) -> dict:
  """Checks an ImageFeature entry; returns its options with the legacy defaults filled in."""
  unknown = sorted(set(entry) - set(_IMAGE_KEYS))
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


def _image_decoder(
  *,
  decode_format: str,
  channels: int,
  resize_height: int | None,
  resize_width: int | None,
  enforced_dtype: str,
  standard_scaling: bool,
) -> Callable[[tf.Tensor], tf.Tensor]:
  """Returns `decode(strings[batch]) -> images[batch, h, w, c]`."""
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
    static_channels = (3 if decode_format == "gif" else channels) or None
    shape = [resize_height, resize_width, static_channels] if resize else [None, None, static_channels]
    return tf.map_fn(decode_one, batch, fn_output_signature=tf.TensorSpec(shape, dtype))

  return decode

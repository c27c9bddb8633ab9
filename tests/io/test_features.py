"""Feature types of features_map, parsed through the real TFRecord feeder."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deephub.config import defaults
from deephub.errors import UserError
from deephub.io import make_feeder
from deephub.io.features import example_spec, parsing_spec

# A 4x6 RGB image with distinct pixels; lossless formats must round-trip it.
PIXELS = (np.arange(4 * 6 * 3).reshape(4, 6, 3) * 3).astype(np.uint8)


def encode(pixels, fmt):
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format={"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "gif": "GIF"}[fmt])
  return buffer.getvalue()


def feature(values):
  if isinstance(values[0], bytes):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
  if isinstance(values[0], float):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def read_batch(tmp_path, examples, features_map):
  path = str(tmp_path / "data.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for example in examples:
      features = tf.train.Features(feature={k: feature(v) for k, v in example.items()})
      writer.write(tf.train.Example(features=features).SerializeToString())
  config = defaults.feeder_config(
    batch_size=len(examples), file_patterns=[path], features_map=features_map, auto_generate_meta=True
  )
  return next(iter(make_feeder(config).dataset(epochs=1)))


def test_var_len_and_fixed_len_sequence(tmp_path):
  batch = read_batch(
    tmp_path,
    [{"ids": [1, 2, 3], "pairs": [1.0, 2.0, 3.0, 4.0]}, {"ids": [4], "pairs": [5.0, 6.0]}],
    {
      "ids": {"type": "VarLenFeature", "dtype": "int64"},
      "pairs": {"type": "FixedLenSequenceFeature", "shape": [2], "dtype": "float32", "default_value": -1.0},
    },
  )
  assert isinstance(batch["ids"], tf.SparseTensor)
  assert tf.sparse.to_dense(batch["ids"]).numpy().tolist() == [[1, 2, 3], [4, 0, 0]]
  assert batch["pairs"].numpy().tolist() == [[[1, 2], [3, 4]], [[5, 6], [-1, -1]]]


@pytest.mark.parametrize("fmt", ["png", "bmp", "auto", "gif"])
def test_lossless_images_decode_exactly(tmp_path, fmt):
  stored = "gif" if fmt == "gif" else "png" if fmt == "auto" else fmt
  pixels = PIXELS if fmt != "gif" else np.repeat(PIXELS[..., :1], 3, axis=-1) // 64 * 64  # GIF: few colours.
  batch = read_batch(
    tmp_path,
    [{"image": [encode(pixels, stored)]}] * 2,
    {"image": {"type": "ImageFeature", "decode_format": fmt, "enforced_dtype": "uint8"}},
  )
  assert batch["image"].dtype == tf.uint8
  assert batch["image"].shape == (2, 4, 6, 3)
  np.testing.assert_array_equal(batch["image"].numpy()[1], pixels)


def test_jpeg_resize_grayscale_and_scaling(tmp_path):
  batch = read_batch(
    tmp_path,
    [
      {"image": [encode(np.full((8, 8, 3), 255, np.uint8), "jpeg")]},
      {"image": [encode(np.zeros((5, 7, 3), np.uint8), "jpeg")]},
    ],
    {
      "image": {
        "type": "ImageFeature",
        "decode_format": "jpeg",
        "channels": 1,
        "resize_height": 3,
        "resize_width": 2,
        "standard_scaling": True,
      }
    },
  )
  images = batch["image"].numpy()
  assert images.shape == (2, 3, 2, 1) and images.dtype == np.float32
  np.testing.assert_allclose(images[0], 1.0, atol=0.02)  # White -> 1.
  np.testing.assert_allclose(images[1], -1.0, atol=0.02)  # Black -> -1.


def test_float_images_are_in_unit_range(tmp_path):
  batch = read_batch(tmp_path, [{"image": [encode(PIXELS, "png")]}], {"image": {"type": "ImageFeature"}})
  np.testing.assert_allclose(batch["image"].numpy()[0], PIXELS / 255.0, rtol=1e-6)


@pytest.mark.parametrize(
  "entry, message",
  [
    ({"type": "Fixed", "dtype": "int64"}, r"f.x.type is 'Fixed'; use one of FixedLenFeature"),
    ({"type": "FixedLenFeature", "dtype": "int32"}, r"f.x.dtype is 'int32'"),
    ({"type": "ImageFeature", "decode_format": "tiff"}, r"decode_format is 'tiff'"),
    ({"type": "ImageFeature", "resize_height": 3}, r"set both resize_height and resize_width"),
    ({"type": "ImageFeature", "channels": 2}, r"channels is 2"),
    (
      {"type": "ImageFeature", "enforced_dtype": "uint8", "standard_scaling": True},
      r"standard_scaling needs",
    ),
    ({"type": "ImageFeature", "resize": 3}, r"unknown ImageFeature keys \['resize'\]"),
  ],
)
def test_feature_errors(entry, message):
  with pytest.raises(UserError, match=message):
    parsing_spec({"x": entry}, where="f")


@pytest.mark.parametrize(
  "entry, dtype, values",
  [
    ({"type": "FixedLenFeature", "shape": [], "dtype": "int64"}, tf.int64, 1),
    ({"type": "FixedLenFeature", "shape": [2, 3], "dtype": "float32"}, tf.float32, 6),
    ({"dtype": "string"}, tf.string, 1),  # FixedLenFeature is the default type.
    ({"type": "VarLenFeature", "dtype": "int64"}, tf.int64, None),
    ({"type": "FixedLenSequenceFeature", "shape": [2], "dtype": "float32"}, tf.float32, None),
    ({"type": "ImageFeature"}, tf.string, None),  # Encoded bytes, checked by decoding.
  ],
)
def test_example_spec_says_what_a_record_must_hold(entry, dtype, values):
  spec = example_spec({"x": entry}, {"y": {"type": "FixedLenFeature", "shape": [4], "dtype": "int64"}})
  assert spec.feature_names == ["x"] and spec.label_names == ["y"]
  entries = list(spec.entries())
  assert [(map_name, name) for map_name, name, _ in entries] == [("features_map", "x"), ("labels_map", "y")]
  (_, _, feature), (_, _, label) = entries
  assert feature.dtype == dtype and spec.values_per_example("features_map", "x", feature) == values
  # labels_map's entries are counted as their own: four int64 values.
  assert spec.values_per_example("labels_map", "y", label) == 4
  assert example_spec({"x": entry}, None).fixed_shapes is (values is not None)


def test_class_type_names_the_type_as_type_does(tmp_path):
  # The later YAML spelling: `class_type` was once ignored, so a VarLenFeature read as fixed-length.
  batch = read_batch(
    tmp_path,
    [{"ids": [1, 2, 3], "pairs": [1.0, 2.0, 3.0, 4.0]}, {"ids": [4], "pairs": [5.0, 6.0]}],
    {
      "ids": {"class_type": "VarLenFeature", "dtype": "int64"},
      "pairs": {"class_type": "FixedLenSequenceFeature", "shape": [2], "dtype": "float32"},
    },
  )
  assert isinstance(batch["ids"], tf.SparseTensor)
  assert tf.sparse.to_dense(batch["ids"]).numpy().tolist() == [[1, 2, 3], [4, 0, 0]]
  assert batch["pairs"].numpy().tolist() == [[[1, 2], [3, 4]], [[5, 6], [0, 0]]]


def test_fixed_len_default_value_fills_a_missing_feature(tmp_path):
  batch = read_batch(
    tmp_path,
    [{"x": [1], "pair": [7, 8], "word": [b"a"]}, {"x": [2]}],
    {
      "x": {"class_type": "FixedLenFeature", "shape": [1], "dtype": "int64"},
      "pair": {"type": "FixedLenFeature", "shape": [2], "dtype": "int64", "default_value": -1},
      "word": {"type": "FixedLenFeature", "shape": [], "dtype": "string", "default_value": "none"},
    },
  )
  assert batch["pair"].numpy().tolist() == [[7, 8], [-1, -1]]  # A scalar default fills the shape.
  assert batch["word"].numpy().tolist() == [b"a", b"none"]


@pytest.mark.parametrize(
  "entry, message",
  [
    ({"class_type": "VarLen", "dtype": "int64"}, r"f.x.class_type is 'VarLen'; use one of FixedLenFeature"),
    (
      {"type": "FixedLenFeature", "class_type": "VarLenFeature", "dtype": "int64"},
      r"f.x sets type 'FixedLenFeature' and class_type 'VarLenFeature'; keep one of them",
    ),
    (
      {"type": "FixedLenFeature", "shape": [3], "dtype": "int64", "default_value": [1, 2]},
      r"f.x.default_value has 2 values but shape \[3\] needs 3",
    ),
  ],
)
def test_class_type_and_default_errors(entry, message):
  with pytest.raises(UserError, match=message):
    parsing_spec({"x": entry}, where="f")


def test_a_feature_that_is_also_the_label_must_be_read_the_same_way():
  number = {"type": "FixedLenFeature", "shape": [1], "dtype": "int64"}
  assert example_spec({"number": number}, {"number": dict(number)}).parsing == {
    "number": tf.io.FixedLenFeature([1], tf.int64)
  }
  with pytest.raises(
    UserError, match=r"^features_map.number and labels_map.number read the same feature differently"
  ):
    example_spec({"number": {"type": "VarLenFeature", "dtype": "int64"}}, {"number": number})

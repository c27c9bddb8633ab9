"""deephub.preprocess.image_check: which images are kept, converted or refused, and the JPEG header walk."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deephub.preprocess import image_check
from tests.preprocess.test_image import _pixels, encode


def _decoded(data):
  return tf.io.decode_image(data, channels=3, expand_animations=False).numpy().astype(np.int32)


@pytest.mark.parametrize(
  ("data", "shape", "converted_from"),
  [
    (encode(_pixels(), "JPEG"), (24, 32, 3), None),
    (encode(_pixels(), "JPEG", "L"), (24, 32, 1), None),  # Grayscale JPEG: kept as is.
    (encode(_pixels(), "JPEG", "CMYK"), (24, 32, 3), "CMYK JPEG"),
    (encode(_pixels(), "PNG"), (24, 32, 3), "PNG"),
    (encode(_pixels(), "PNG", "RGBA"), (24, 32, 3), "PNG"),
    (encode(_pixels(), "PNG", "L"), (24, 32, 3), "PNG"),
    (encode(_pixels(), "GIF"), (24, 32, 3), "GIF"),
    (encode(_pixels(), "BMP"), (24, 32, 3), "BMP"),
  ],
  ids=["jpeg", "gray-jpeg", "cmyk-jpeg", "png", "rgba-png", "gray-png", "gif", "bmp"],
)
def test_check_image_keeps_plain_jpegs_and_converts_the_rest_to_rgb_jpeg(data, shape, converted_from):
  checked = image_check.check_image(data)
  assert (checked.height, checked.width, checked.channels) == shape
  assert checked.converted_from == converted_from
  if converted_from is None:
    assert checked.encoded is data  # The original bytes, not re-encoded.
  else:
    assert tf.io.is_jpeg(checked.encoded).numpy()
    assert tf.io.extract_jpeg_shape(checked.encoded).numpy().tolist() == [24, 32, 3]
    # The same picture: TensorFlow's own decode of the original, re-encoded at quality 95.
    # (GIF is palette-quantised by pillow, so it gets a looser bound.)
    bound = 12 if converted_from == "GIF" else 4
    assert np.abs(_decoded(checked.encoded) - _decoded(data)).mean() < bound


@pytest.mark.parametrize(
  ("data", "reason"),
  [
    (encode(_pixels(), "JPEG")[:200], "Invalid JPEG data"),  # Truncated.
    (b"not an image at all", "Unknown image file format"),
    (encode(_pixels(), "PNG")[:100], "PNG"),  # Truncated PNG.
    (encode(_pixels(), "TIFF"), "Unknown image file format"),  # TensorFlow has no TIFF decoder.
  ],
  ids=["truncated-jpeg", "text", "truncated-png", "tiff"],
)
def test_check_image_raises_for_files_that_do_not_decode(data, reason):
  with pytest.raises(image_check.BadImageError, match=reason) as error:
    image_check.check_image(data)
  assert "{{" not in str(error.value) and "[Op:" not in str(error.value)


def _jpeg_with_exif():
  buffer = io.BytesIO()
  exif = Image.Exif()
  exif[0x010F] = "deephub test camera"
  Image.fromarray(_pixels(40, 50)).save(buffer, format="JPEG", exif=exif)
  return buffer.getvalue()


@pytest.mark.parametrize(
  "data",
  [
    encode(_pixels(24, 32), "JPEG"),
    encode(_pixels(7, 300), "JPEG", "L"),
    encode(_pixels(24, 32), "JPEG", "CMYK"),
    _jpeg_with_exif(),
  ],
  ids=["rgb", "gray", "cmyk", "exif"],
)
def test_jpeg_header_matches_tensorflow(data):
  assert image_check.jpeg_header(data) == tuple(tf.io.extract_jpeg_shape(data).numpy().tolist())


def test_jpeg_header_of_progressive_jpegs_and_of_no_header():
  buffer = io.BytesIO()
  Image.fromarray(_pixels(24, 32)).save(buffer, format="JPEG", progressive=True)
  assert image_check.jpeg_header(buffer.getvalue()) == (24, 32, 3)
  assert image_check.jpeg_header(encode(_pixels(), "JPEG")[:20]) is None
  assert image_check.jpeg_header(b"\xff\xd8\xff\xd9") is None
  assert image_check.jpeg_header(b"\xff\xd8junk") is None


def _check_or_error(data):
  try:
    return image_check.check_image(data)
  except image_check.BadImageError as error:
    return str(error)


@pytest.mark.parametrize(
  "datas",
  [
    [encode(_pixels(), "JPEG"), encode(_pixels(7, 300), "JPEG", "L"), _jpeg_with_exif()],
    [
      encode(_pixels(), "JPEG"),
      encode(_pixels(), "PNG"),
      encode(_pixels(), "JPEG")[:200],  # Truncated: fails the batch decode, so each is checked alone.
      encode(_pixels(), "JPEG", "CMYK"),
      b"not an image at all",
      encode(_pixels(9, 11), "JPEG"),
    ],
    [],
  ],
  ids=["plain-jpegs", "mixed-with-bad", "empty"],
)
def test_check_images_equals_check_image_on_each(datas):
  results = image_check.check_images(datas)
  assert len(results) == len(datas)
  for data, result in zip(datas, results, strict=True):
    expected = _check_or_error(data)
    if isinstance(expected, str):
      assert isinstance(result, image_check.BadImageError) and str(result) == expected
    else:
      assert result == expected

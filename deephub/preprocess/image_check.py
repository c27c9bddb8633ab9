"""Checking image files with TensorFlow's image kernels, converting them to RGB JPEG when needed.

A 1- or 3-channel JPEG is kept byte for byte (decoded only to check it);
a PNG, GIF, BMP or WebP, or a CMYK JPEG, is decoded and re-encoded as an
RGB JPEG; anything TensorFlow cannot decode raises `BadImageError` with
TensorFlow's reason. `check_images` checks many at once: the plain JPEGs
(nearly all, usually) are decoded in one compiled graph call, the rest one
by one with `check_image`.
"""

import dataclasses
import re
from collections.abc import Sequence

import tensorflow as tf

# Converted images are stored at TensorFlow's default JPEG quality: visually
# lossless, a third the size of quality 100.
_JPEG_QUALITY = 95
_MAGIC = (
  (b"\xff\xd8\xff", "JPEG"),
  (b"\x89PNG\r\n\x1a\n", "PNG"),
  (b"GIF87a", "GIF"),
  (b"GIF89a", "GIF"),
  (b"BM", "BMP"),
)


class BadImageError(Exception):
  """A file that TensorFlow's image kernels cannot decode."""


@dataclasses.dataclass(frozen=True)
class CheckedImage:
  """What a record stores about an image, after the check (and conversion)."""

  encoded: bytes
  height: int
  width: int
  channels: int
  # None when `encoded` is the file's own bytes, else what it was converted from.
  converted_from: str | None


def _sniff(data: bytes) -> str | None:
  for magic, kind in _MAGIC:
    if data.startswith(magic):
      return kind
  if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
    return "WebP"
  return None


# Start-of-frame markers (baseline, progressive, lossless, arithmetic); not
# DHT (C4), JPG (C8) or DAC (CC), which share the range.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_header(data: bytes) -> tuple[int, int, int] | None:
  """(height, width, components) from the JPEG frame header, or None if there is none.

  Walks the marker segments to the start-of-frame, reading a few dozen
  bytes: as exact as `tf.io.extract_jpeg_shape` and without its op dispatch,
  which cost a third of the check per image. The data itself is checked
  by the decode.
  """
  pos = 2
  while pos + 4 <= len(data):
    if data[pos] != 0xFF:
      return None
    marker = data[pos + 1]
    if marker == 0xFF:  # Fill byte.
      pos += 1
      continue
    if marker in (0x01, *range(0xD0, 0xD8)):  # No length field.
      pos += 2
      continue
    if marker in (0xD9, 0xDA):  # End of image or start of scan before any frame.
      return None
    length = int.from_bytes(data[pos + 2 : pos + 4], "big")
    if marker in _SOF_MARKERS:
      if pos + 10 > len(data):
        return None
      height = int.from_bytes(data[pos + 5 : pos + 7], "big")
      width = int.from_bytes(data[pos + 7 : pos + 9], "big")
      return height, width, data[pos + 9]
    pos += 2 + length
  return None


def _reason(error: tf.errors.OpError) -> str:
  """TensorFlow's message without the function-node prefix and op suffix."""
  message = re.sub(r"\{\{.*?\}\}\s*", "", error.message)
  return " ".join(re.sub(r"\s*\[Op:\w+\].*$", "", message).split()) or type(error).__name__


def check_image(data: bytes) -> CheckedImage:
  """Decodes `data` to check it; converts anything but a 1- or 3-channel JPEG to RGB JPEG.

  Raises:
    BadImageError: TensorFlow cannot decode it (truncated, corrupt, or not
      a JPEG, PNG, GIF, BMP or WebP).
  """
  kind = _sniff(data)
  try:
    header = jpeg_header(data) if kind == "JPEG" else None
    if header is not None:
      height, width, channels = header
      if channels in (1, 3):
        # Decoding at 1/8 scale still reads the whole entropy-coded stream (so
        # a truncated or corrupt file fails) but skips most of the inverse
        # DCT: 25% faster than a full decode on 256x256 photos.
        tf.io.decode_jpeg(data, ratio=8)
        return CheckedImage(data, height, width, channels, converted_from=None)
      # 4 components: CMYK or YCCK. TensorFlow's JPEG decoder converts them to RGB.
      image = tf.io.decode_jpeg(data, channels=3)
      kind = "CMYK JPEG" if channels == 4 else f"{channels}-component JPEG"
    else:
      # Not a JPEG, or one without a readable frame header (the decode says why).
      image = tf.io.decode_image(data, channels=3, expand_animations=False)
  except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
    raise BadImageError(_reason(error)) from None
  encoded = tf.io.encode_jpeg(image, format="rgb", quality=_JPEG_QUALITY).numpy()
  return CheckedImage(encoded, int(image.shape[0]), int(image.shape[1]), 3, converted_from=kind or "unknown")


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def _decode_jpegs(images: tf.Tensor) -> tf.Tensor:
  """Decodes every JPEG at 1/8 scale in one graph; raises on the first that fails.

  One call per batch rather than one eager op per image: the eager dispatch
  cost about as much CPU as the decode itself. Returns the decoded sizes so
  that no decode can be pruned.
  """

  def body(index, total):
    decoded = tf.io.decode_jpeg(images[index], ratio=8)
    return index + 1, total + tf.size(decoded, out_type=tf.int64)

  _, total = tf.while_loop(
    lambda index, _: index < tf.size(images), body, (tf.constant(0), tf.constant(0, tf.int64))
  )
  return total


def check_images(datas: Sequence[bytes]) -> list[CheckedImage | BadImageError]:
  """`check_image` of each of `datas`, in order, with the error in place of a bad image's result.

  The same results as calling `check_image` on each: a 1- or 3-channel JPEG
  (read from its frame header in Python) joins one graph-mode decode of
  all of them; if any of those fails, each is checked again on its own to
  learn which failed and why. Everything else goes through `check_image`.
  """
  headers = {}
  for index, data in enumerate(datas):
    header = jpeg_header(data) if _sniff(data) == "JPEG" else None
    if header is not None and header[2] in (1, 3):
      headers[index] = header
  if headers:
    try:
      _decode_jpegs(tf.constant([datas[index] for index in headers]))
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
      headers = {}  # A bad one among them: check each alone for its reason.
  results: list[CheckedImage | BadImageError] = []
  for index, data in enumerate(datas):
    if index in headers:
      height, width, channels = headers[index]
      results.append(CheckedImage(data, height, width, channels, converted_from=None))
      continue
    try:
      results.append(check_image(data))
    except BadImageError as error:
      results.append(error)
  return results

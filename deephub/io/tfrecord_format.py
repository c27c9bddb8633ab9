"""Facts about TFRecord files that several modules need: framing, compressions, remote paths.

Each fact is stated here once; the feeder, the metadata scan, the validation
checks and the native-op wrappers import it. Importing this module imports
neither TensorFlow nor anything else heavy, so `deep utils` can use it.

Framing (`tensorflow/core/lib/io/record_writer.cc`): every record is

  uint64 length | uint32 masked CRC32C of the length | data | uint32 masked CRC32C of the data

all little-endian.
"""

import re

from deephub.errors import UserError

# The bytes before a record's data: its length and the length's CRC. Fewer
# than this after the last record are not a record (tf.data ignores them too).
HEADER_BYTES = 12
# The bytes after a record's data: the data's CRC.
FOOTER_BYTES = 4
# The bytes a record adds to its data; also the fewest bytes any record takes.
RECORD_OVERHEAD_BYTES = HEADER_BYTES + FOOTER_BYTES

# The `compression` values deephub reads and writes ('' is uncompressed), as
# `tf.data.TFRecordDataset(compression_type=...)` spells them: GZIP a gzip
# stream, ZLIB a zlib-wrapped deflate stream. The feeders, `deep utils` and
# the metadata scan all check against this tuple; a new entry also needs its
# decompressor in the pure-Python scan (`deephub.io.metadata._inflate`).
COMPRESSIONS = ("", "GZIP", "ZLIB")

# A URL scheme (RFC 3986: a letter, then letters, digits, '+', '-' or '.')
# followed by '://' at the start of a path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def check_compression(compression: str, *, key: str = "compression") -> None:
  """Raises a UserError naming `key` unless `compression` is one of `COMPRESSIONS`."""
  if compression not in COMPRESSIONS:
    shown = [repr(name) for name in COMPRESSIONS]
    raise UserError(f"{key} is {compression!r}; use {', '.join(shown[:-1])} or {shown[-1]}")


def scheme(path: str) -> str:
  """Returns the URL scheme of `path` ('s3' for 's3://b/k'), '' for a local path."""
  match = _SCHEME.match(path)
  return match.group(1).lower() if match else ""


def is_remote(path: str) -> bool:
  """True for a path with a URL scheme (`gs://`, `s3://`, `file://`, ...): read through `tf.io.gfile`.

  A path is remote only when it starts with a scheme, as TensorFlow's own
  file systems parse it; a local name that merely contains '://' is local.
  """
  return bool(scheme(path))

"""Which record a failed parse came from: the file, record number, byte offset and why.

`tf.io.parse_example` fails a whole batch with an InvalidArgumentError that
names neither the file nor the record; when the record's bytes are not
UTF-8, TensorFlow even fails to format that error and raises a
UnicodeDecodeError. After such a failure, `explain_parse_error` reads the
files again on the host, a chunk at a time, finds the first record that does
not parse and says why. It runs only on that error path, never in the
input pipeline.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
from google.protobuf import message

from deephub.errors import UserError
from deephub.io.tfrecord_format import RECORD_OVERHEAD_BYTES

# Records parsed per eager call while searching: few calls, small memory.
_SEARCH_CHUNK_RECORDS = 1024
# The feature names shown when a record lacks one.
_SHOWN_NAMES = 10


def explain_parse_error(
  files: Sequence[str], spec: Mapping[str, Any], *, compression: str, where: str, error: Exception
) -> UserError:
  """Returns a one-line UserError naming the first record of `files` that `spec` cannot parse.

  Args:
    files: the feeder's files, in reading order.
    spec: the feeder's `tf.io.parse_example` spec (features and labels).
    compression: '', 'GZIP' or 'ZLIB'; byte offsets are given for uncompressed files.
    where: config path of the feeder, for the message.
    error: the error the pipeline raised, shown when no single record fails.
  """
  for path in files:
    index = offset = 0
    for chunk in tf.data.TFRecordDataset(path, compression_type=compression).batch(_SEARCH_CHUNK_RECORDS):
      try:
        tf.io.parse_example(chunk, spec)
      except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
        for record in chunk.numpy():
          problem = record_problem(record, spec)
          if problem:
            at = f"record {index}" + ("" if compression else f" (byte offset {offset})")
            return UserError(
              f"{where}: {path}: {at} {problem}; fix or remove that record, or fix {where}.features_map"
            )
          index, offset = index + 1, offset + len(record) + RECORD_OVERHEAD_BYTES
      else:
        records = chunk.numpy()
        index += len(records)
        offset += sum(len(record) for record in records) + RECORD_OVERHEAD_BYTES * len(records)
  return UserError(
    f"{where}: the records of {len(files)} file(s) do not parse with {where}.features_map "
    f"({_short(error)}); check it against the data"
  )


def record_problem(record: bytes, spec: Mapping[str, Any]) -> str:
  """Why one serialized record does not parse with `spec`, or '' when it does."""
  try:
    example = tf.train.Example.FromString(record)
  except message.DecodeError:
    return "is not a tf.Example (its bytes do not decode as one)"
  found = example.features.feature
  for name, feature in spec.items():
    required = isinstance(feature, tf.io.FixedLenFeature) and feature.default_value is None
    if required and name not in found:
      names = sorted(found)
      shown = ", ".join(repr(n) for n in names[:_SHOWN_NAMES])
      shown += ", ..." if len(names) > _SHOWN_NAMES else ""
      return f"has no feature {name!r} (it has {shown or 'none'})"
  try:
    tf.io.parse_example(tf.constant([record]), spec)
  except (tf.errors.InvalidArgumentError, UnicodeDecodeError) as error:
    return f"does not parse ({_short(error)})"
  return ""


def _short(error: Exception) -> str:
  """The first line of TensorFlow's message without its node and op decorations, printable and short."""
  text = getattr(error, "message", None) or str(error)
  text = text.splitlines()[0] if text else type(error).__name__
  text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
  text = "".join(c if c.isprintable() else "?" for c in text)
  return text if len(text) <= 200 else text[:197] + "..."

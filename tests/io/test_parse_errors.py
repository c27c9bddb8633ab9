"""parse_errors: the record a failed parse came from, and why."""

import pytest
import tensorflow as tf

from deephub.errors import UserError
from deephub.io import parse_errors

SPEC = {
  "number": tf.io.FixedLenFeature([], tf.int64),
  "optional": tf.io.FixedLenFeature([], tf.int64, default_value=0),
  "ids": tf.io.VarLenFeature(tf.int64),
}


def example(**features) -> bytes:
  feature = {
    name: tf.train.Feature(int64_list=tf.train.Int64List(value=values)) if isinstance(values, list)
    else tf.train.Feature(float_list=tf.train.FloatList(value=[values]))
    for name, values in features.items()
  }  # fmt: skip
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.mark.parametrize(
  "record, problem",
  [
    (example(number=[1]), ""),  # Optional and VarLen features may be missing.
    (example(number=[1], ids=[1, 2, 3]), ""),
    (b"\xff\xfe\x00 not a proto", "is not a tf.Example"),
    (example(other=[1]), "has no feature 'number' (it has 'other')"),
    (example(number=[1, 2]), "does not parse ("),  # Two values for a scalar.
    (example(number=1.5), "does not parse ("),  # A float for an int64.
  ],
)
def test_record_problem(record, problem):
  found = parse_errors.record_problem(record, SPEC)
  assert (found == "") if not problem else problem in found, found


def test_explain_names_file_record_and_offset(tmp_path):
  records = [example(number=[i]) for i in range(1500)] + [example(other=[1])]
  path = str(tmp_path / "f")
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(record)
  offset = sum(len(record) + 16 for record in records[:-1])
  error = parse_errors.explain_parse_error([path], SPEC, compression="", where="w", error=ValueError("x"))
  assert isinstance(error, UserError)
  assert str(error).startswith(f"w: {path}: record 1500 (byte offset {offset}) has no feature 'number'")

"""The TFRecord facts in deephub.io.tfrecord_format agree with what TensorFlow writes and reads."""

import pytest
import tensorflow as tf

from deephub.errors import UserError
from deephub.io import tfrecord_format


@pytest.mark.parametrize("data_bytes", [0, 1, 100])
def test_framing_sizes_match_tensorflow_writer(tmp_path, data_bytes):
  path = str(tmp_path / "one.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(b"x" * data_bytes)
  assert tf.io.gfile.stat(path).length == data_bytes + tfrecord_format.RECORD_OVERHEAD_BYTES
  assert tfrecord_format.HEADER_BYTES + tfrecord_format.FOOTER_BYTES == tfrecord_format.RECORD_OVERHEAD_BYTES


def test_a_tail_shorter_than_a_header_is_no_record(tmp_path):
  """tf.data reads a file whose last bytes cannot hold a header without an error."""
  path = tmp_path / "tail.tfrecord"
  with tf.io.TFRecordWriter(str(path)) as writer:
    writer.write(b"record")
  with open(path, "ab") as f:
    f.write(b"\0" * (tfrecord_format.HEADER_BYTES - 1))
  assert [bytes(r.numpy()) for r in tf.data.TFRecordDataset(str(path))] == [b"record"]


@pytest.mark.parametrize("compression", tfrecord_format.COMPRESSIONS)
def test_every_listed_compression_round_trips_through_tensorflow(tmp_path, compression):
  path = str(tmp_path / "data.tfrecord")
  with tf.io.TFRecordWriter(path, options=compression) as writer:
    writer.write(b"payload")
  tfrecord_format.check_compression(compression)
  records = tf.data.TFRecordDataset(path, compression_type=compression)
  assert [bytes(r.numpy()) for r in records] == [b"payload"]


def test_an_unlisted_compression_is_one_line_naming_the_key():
  with pytest.raises(UserError, match=r"^feeder compression is 'ZIP'; use '', 'GZIP' or 'ZLIB'$"):
    tfrecord_format.check_compression("ZIP", key="feeder compression")


@pytest.mark.parametrize(
  "path, scheme, remote",
  [
    ("/data/train-*", "", False),
    ("relative/train", "", False),
    ("gs://bucket/train-*", "gs", True),
    ("S3://bucket/key", "s3", True),
    ("file:///tmp/x", "file", True),
    ("/data/odd://name", "", False),  # '://' inside a local name is no scheme.
    ("1s3://bucket/key", "", False),  # A scheme starts with a letter.
  ],
)
def test_remote_paths_are_those_with_a_scheme(path, scheme, remote):
  assert tfrecord_format.scheme(path) == scheme
  assert tfrecord_format.is_remote(path) is remote

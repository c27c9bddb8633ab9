"""Writes the bundled toy TFRecord data.

The toy data is the smallest dataset that exercises the whole pipeline: one
train shard with int64 feature `number` = 0..9 and one validation shard with
`number` = 10..19. The label is `number` itself (the toy model has 100 classes),
so every example is distinguishable in tests.

`compressed_toy/` holds the same shards GZIP-compressed (`*.gz`), and each
folder its `_tfrecord_metadata.json`, so the toy variant and the documented
`deep` commands work without a metadata step.

Run from anywhere (rewrites the files in place):
  python -m deephub.resources.make_toy_data
"""

import os

import tensorflow as tf

from deephub.io import metadata

TOY_DIR = os.path.join(os.path.dirname(__file__), "blobs", "data", "toy")
COMPRESSED_TOY_DIR = os.path.join(os.path.dirname(__file__), "blobs", "data", "compressed_toy")
SHARDS = {"train-00000-of-00001": range(0, 10), "validation-00000-of-00001": range(10, 20)}


def make_example(number: int) -> tf.train.Example:
  """Returns a tf.Example holding `number` as both feature and label."""
  int64 = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
  return tf.train.Example(
    features=tf.train.Features(feature={"number": int64(number), "label": int64(number)})
  )


def write_shard(path: str, numbers: range, compression: str = "") -> None:
  """Writes one TFRecord file with one example per number."""
  with tf.io.TFRecordWriter(path, options=compression or None) as writer:
    for number in numbers:
      # deterministic: map fields in a fixed order, so a rerun rewrites the same bytes.
      writer.write(make_example(number).SerializeToString(deterministic=True))


def main() -> None:
  for folder, compression, suffix in ((TOY_DIR, "", ""), (COMPRESSED_TOY_DIR, "GZIP", ".gz")):
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, name + suffix) for name in SHARDS]
    for path, numbers in zip(paths, SHARDS.values(), strict=True):
      write_shard(path, numbers, compression)
    metadata.generate(paths, compression=compression, force=True)


if __name__ == "__main__":
  main()

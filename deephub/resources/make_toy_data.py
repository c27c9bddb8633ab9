"""Writes the bundled toy TFRecord data.

The toy data is the smallest dataset that exercises the whole pipeline: one
train shard with int64 feature `number` = 0..9 and one validation shard with
`number` = 10..19. The label is `number` itself (the toy model has 100 classes),
so every example is distinguishable in tests.

Run from anywhere (rewrites the files in place):
  python -m deephub.resources.make_toy_data
"""

import os

import tensorflow as tf

TOY_DIR = os.path.join(os.path.dirname(__file__), "blobs", "data", "toy")


def make_example(number: int) -> tf.train.Example:
  """Returns a tf.Example holding `number` as both feature and label."""
  int64 = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
  return tf.train.Example(
    features=tf.train.Features(feature={"number": int64(number), "label": int64(number)})
  )


def write_shard(path: str, numbers: range) -> None:
  """Writes one TFRecord file with one example per number."""
  with tf.io.TFRecordWriter(path) as writer:
    for number in numbers:
      writer.write(make_example(number).SerializeToString())


def main() -> None:
  os.makedirs(TOY_DIR, exist_ok=True)
  write_shard(os.path.join(TOY_DIR, "train-00000-of-00001"), range(0, 10))
  write_shard(os.path.join(TOY_DIR, "validation-00000-of-00001"), range(10, 20))


if __name__ == "__main__":
  main()

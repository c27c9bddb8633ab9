"""Synthetic TFRecord shards for the benchmarks, generated once and cached.

Each record is a `tf.Example` with a scalar int64 `number`, a 32-float
`dense` feature and an int64 `label` in [0, NUM_CLASSES). Records are encoded
directly in the protobuf wire format (a few lines, checked against
`tf.io.parse_example` by the benchmarks), which writes a million examples in
seconds where building `tf.train.Example` objects would take minutes.

The cache folder is keyed by size and format version, and a `DONE` marker is
written last, so an interrupted generation is redone, never half-used.
"""

import os
import shutil

import numpy as np

from deephub.io import metadata

DENSE_WIDTH = 32
NUM_CLASSES = 10
# Bump when the record layout changes: old caches are then ignored.
FORMAT_VERSION = 2  # 2: with _tfrecord_metadata.json


def features_map() -> dict:
  """The feeder `features_map` of every feature in the records."""
  return {
    "number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"},
    "dense": {"type": "FixedLenFeature", "shape": [DENSE_WIDTH], "dtype": "float32"},
  }


def labels_map() -> dict:
  """The feeder `labels_map` of the records."""
  return {"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}


def cache_root() -> str:
  """`$DEEPHUB_BENCH_CACHE`, else `~/.cache/deephub-bench`."""
  return os.environ.get("DEEPHUB_BENCH_CACHE") or os.path.join(
    os.path.expanduser("~"), ".cache", "deephub-bench"
  )


def ensure_dataset(
  num_examples: int, num_shards: int, *, root: str | None = None, seed: int = 0
) -> list[str]:
  """Returns the shard paths of a dataset of this size, generating it if not cached.

  Args:
    num_examples: records over all shards.
    num_shards: files; examples are spread evenly (the first shards take the rest).
    root: cache root; `cache_root()` by default.
    seed: numpy seed of the values.
  """
  folder = os.path.join(root or cache_root(), f"v{FORMAT_VERSION}-{num_examples}x{num_shards}-seed{seed}")
  paths = [os.path.join(folder, f"train-{i:05d}-of-{num_shards:05d}") for i in range(num_shards)]
  if os.path.exists(os.path.join(folder, "DONE")):
    return paths
  import tensorflow as tf  # Deferred: the cache check above needs no TensorFlow.

  shutil.rmtree(folder, ignore_errors=True)
  os.makedirs(folder)
  rng = np.random.default_rng(seed)
  per_shard = [num_examples // num_shards + (i < num_examples % num_shards) for i in range(num_shards)]
  for path, count in zip(paths, per_shard, strict=True):
    numbers = rng.integers(0, 1000, size=count)
    labels = rng.integers(0, NUM_CLASSES, size=count)
    dense = rng.standard_normal((count, DENSE_WIDTH), dtype=np.float32)
    with tf.io.TFRecordWriter(path) as writer:
      for number, row, label in zip(numbers.tolist(), dense, labels.tolist(), strict=True):
        writer.write(encode_example(number, row.tobytes(), label))
  # The record counts a prepared dataset has (`deep utils generate-metadata`).
  metadata.generate(paths)
  with open(os.path.join(folder, "DONE"), "w") as f:
    f.write(f"{num_examples} examples in {num_shards} shards\n")
  return paths


def encode_example(number: int, dense_le_float32: bytes, label: int) -> bytes:
  """Serializes `Example{number: int64, dense: float32[...], label: int64}`.

  Args:
    number: the int64 `number` value.
    dense_le_float32: the `dense` values as little-endian float32 bytes.
    label: the int64 `label` value.
  """
  entries = (
    _map_entry(b"number", _field(3, _field(1, _varint(number)))),
    _map_entry(b"dense", _field(2, _field(1, dense_le_float32))),
    _map_entry(b"label", _field(3, _field(1, _varint(label)))),
  )
  # Example.features (1) -> Features.feature (1, a map: repeated key/value entries).
  return _field(1, b"".join(_field(1, entry) for entry in entries))


def _map_entry(key: bytes, feature: bytes) -> bytes:
  return _field(1, key) + _field(2, feature)


def _field(number: int, payload: bytes) -> bytes:
  """A length-delimited field (wire type 2); packed repeated values use it too."""
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
  value &= (1 << 64) - 1  # Negative int64 values are encoded as two's complement.
  out = bytearray()
  while value > 0x7F:
    out.append(value & 0x7F | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


def read_bytes(paths: list[str]) -> int:
  """Total size of the files in bytes."""
  return sum(os.path.getsize(path) for path in paths)

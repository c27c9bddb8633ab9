"""TFRecordExamplesFeeder: tf.Example records to batched feature dicts.

The pipeline keeps all per-record work in TensorFlow's C++ kernels: files are
interleaved with parallel reads, serialized records are batched *before*
parsing so `tf.io.parse_example` decodes a whole batch in one op, and the
result is prefetched. No Python runs per element or per batch.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from deephub.errors import UserError
from deephub.io.features import parsing_spec

_COMPRESSIONS = ("", "GZIP")


class TFRecordExamplesFeeder:
  """Reads `tf.Example` TFRecord files described by a legacy feeder config."""

  def __init__(
    self,
    *,
    file_patterns: Sequence[str] | str,
    batch_size: int,
    features_map: Mapping[str, Any],
    labels_map: Mapping[str, Any] | None = None,
    shuffle: bool = False,
    shuffle_buffer_size: int = 10_000,
    max_examples: int = -1,
    drop_remainder: bool = False,
    compression: str = "",
    num_parallel_reads: int = 8,
    deterministic: bool = True,
    seed: int | None = None,
    type: str = "TFRecordExamplesFeeder",  # noqa: A002 - legacy key name.
  ):
    """Checks the config and lists the files.

    Args mirror the feeder config keys (see `deephub.defaults.feeder_config`);
    `seed` seeds both file and example shuffling.

    Raises:
      UserError: a pattern matches no file, or a value is out of range.
    """
    del type  # Selects this class; nothing else to do with it.
    if isinstance(file_patterns, str):
      file_patterns = [file_patterns]
    if not file_patterns:
      raise UserError("feeder file_patterns is empty; set it to a list of TFRecord globs")
    if batch_size < 1:
      raise UserError(f"feeder batch_size is {batch_size}; set it to 1 or more")
    if compression not in _COMPRESSIONS:
      raise UserError(f"feeder compression is {compression!r}; use '' or 'GZIP'")
    if not features_map:
      raise UserError("feeder features_map is empty; name at least one feature")
    self.files = _list_files(file_patterns)
    self.batch_size = batch_size
    self.shuffle = shuffle
    self.shuffle_buffer_size = shuffle_buffer_size
    self.max_examples = max_examples
    self.drop_remainder = drop_remainder
    self.compression = compression
    self.num_parallel_reads = num_parallel_reads
    self.deterministic = deterministic
    self.seed = seed
    self.feature_names = list(features_map)
    self.label_names = list(labels_map or {})
    self._spec = {
      **parsing_spec(features_map, where="features_map"),
      **parsing_spec(labels_map or {}, where="labels_map"),
    }

  def dataset(
    self, epochs: int | None = None, *, input_context: tf.distribute.InputContext | None = None
  ) -> tf.data.Dataset:
    """Returns batches of `(features, labels)` dicts, or `features` alone.

    Args:
      epochs: passes over the files; None repeats forever. Batches never
        span two passes, so a pass is exactly `steps_per_epoch()` batches.
      input_context: given by `strategy.distribute_datasets_from_function`:
        this pipeline reads its share of the data (whole files when there
        are enough, else every n-th record) in per-replica batches of
        `batch_size / replicas`, as `batch_size` is the global batch.

    Raises:
      UserError: `batch_size` does not split evenly across the replicas.
    """
    records = self._records(input_context)
    if self.shuffle:
      records = records.shuffle(self.shuffle_buffer_size, seed=self.seed)
    batches = records.batch(self._replica_batch_size(input_context), drop_remainder=self.drop_remainder)
    batches = batches.repeat(epochs)
    batches = batches.map(self._parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=self.deterministic)
    return batches.prefetch(tf.data.AUTOTUNE)

  def get_input_fn(self, epochs: int | None = None):
    """Legacy spelling: returns a callable that builds `dataset(epochs)`."""
    return lambda: self.dataset(epochs)

  def num_examples(self) -> int:
    """Counts the examples in one pass (reads the files once, in C++)."""
    count = self._records().reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
    return int(count)

  def steps_per_epoch(self, num_examples: int | None = None) -> int:
    """Returns the number of batches in one pass over the files."""
    n = self.num_examples() if num_examples is None else num_examples
    return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

  def _records(self, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """One pass of serialized records, files interleaved; this input pipeline's share of them."""
    pipelines = input_context.num_input_pipelines if input_context else 1
    # Whole files per pipeline read the least; with fewer files than
    # pipelines (or a global max_examples cut) every pipeline reads all files
    # and keeps every n-th record instead.
    shard_files = pipelines > 1 and len(self.files) >= pipelines and self.max_examples < 0
    files = tf.data.Dataset.from_tensor_slices(self.files)
    if shard_files:
      files = files.shard(pipelines, input_context.input_pipeline_id)
    if self.shuffle:
      files = files.shuffle(len(self.files), seed=self.seed)
    records = files.interleave(
      lambda path: tf.data.TFRecordDataset(path, compression_type=self.compression),
      cycle_length=max(1, min(self.num_parallel_reads, len(self.files))),
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=self.deterministic,
    )
    if self.max_examples >= 0:
      records = records.take(self.max_examples)
    if pipelines > 1 and not shard_files:
      records = records.shard(pipelines, input_context.input_pipeline_id)
    return records

  def _replica_batch_size(self, input_context: tf.distribute.InputContext | None) -> int:
    if input_context is None:
      return self.batch_size
    replicas = input_context.num_replicas_in_sync
    if self.batch_size % replicas:
      raise UserError(
        f"feeder batch_size {self.batch_size} is the global batch and must split evenly "
        f"across {replicas} replicas; set it to a multiple of {replicas}"
      )
    return self.batch_size // replicas

  def _parse(self, serialized: tf.Tensor):
    parsed = tf.io.parse_example(serialized, self._spec)
    features = {name: parsed[name] for name in self.feature_names}
    if not self.label_names:
      return features
    return features, {name: parsed[name] for name in self.label_names}


def _list_files(patterns: Sequence[str]) -> list[str]:
  files = []
  for pattern in patterns:
    matched = tf.io.gfile.glob(pattern)
    if not matched:
      raise UserError(f"file pattern {pattern!r} matches no file; check the path or glob")
    files.extend(sorted(matched))
  return files

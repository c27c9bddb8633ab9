"""ExamplesPipeline: files of examples to batched feature dicts, shared by the file-backed feeders.

A feeder supplies its file format: how a file becomes chunks of records
(`read_chunks`), how many records a chunk holds (`chunk_records`) and how a
batch of records becomes `{name: tensor}` (`decode`). Everything between is
here, once: the order of files and records per pass, interleaving,
`max_examples`, sharding across input pipelines, shuffling, batching and
prefetching. `TFRecordExamplesFeeder` and `ParquetExamplesFeeder` each own
one.

The pipeline keeps all per-record work in TensorFlow's C++ kernels and
passes as few dataset elements as it can: each file is read in chunks of
records, the parallel interleave hands over whole chunks (not records), a
chunk is decoded in one op, and `rebatch` slices the decoded tensors into
batches. Per-element hand-offs, not parsing, were the cost: on 2 CPU cores
this reads 2x faster than interleaving single records (see
benchmarks/README.md). Shuffling, `max_examples` and keeping every n-th
record work on single records, so they unbatch the chunks first. No Python
runs per element or per batch.

Each pass is a function of (seed, epoch) alone, so a restored iterator
replays later epochs exactly. The record order of a pass is decided in
`record_chunks`: file order with a buffer shuffle (`_record_level`), or,
where the format can index its records (TFRecord), any order read by record
offset (`_indexed_chunks`: `shuffle: 'global'`, and record-exact shards
across workers).
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from deephub.errors import UserError
from deephub.io import filesystem, global_shuffle, metadata, remote
from deephub.io.record_index import RecordIndex

# Records per read-and-decode chunk: enough that tf.data's per-element cost
# is small against the records a chunk carries (a format with big records
# picks fewer, see TFRecordExamplesFeeder._chunk_records).
CHUNK_RECORDS = 1024
# Spreads per-epoch shuffle seeds apart.
_EPOCH_SEED_STRIDE = 1_000_003
# TensorFlow truncates seeds modulo this (random_seed._MAXINT32).
_MAX_INT32 = 2**31 - 1

# A batch of records as the format reads them (a string vector, or a dict
# of column vectors) to `{name: tensor}`.
Decode = Callable[[Any], dict[str, tf.Tensor]]


@dataclasses.dataclass(frozen=True)
class Batching:
  """The feeder config keys the pipeline reads (see `deephub.config.defaults.feeder_config`).

  `seed` is always set: a feeder without one draws it once, so the epochs of
  a run stay consistent with each other. `num_parallel_maps` and `prefetch`
  are the legacy keys: None leaves the value to tf.data's AUTOTUNE, a number
  fixes it (`prefetch` 0 turns the final prefetch off).
  """

  batch_size: int
  shuffle: bool | str  # False, True (buffer) or 'global' (needs a record index).
  shuffle_buffer_size: int
  max_examples: int
  drop_remainder: bool
  num_parallel_reads: int
  deterministic: bool
  seed: int
  num_parallel_maps: int | None = None
  prefetch: int | None = None


class ExamplesPipeline:
  """Builds the `tf.data` pipeline of a file-backed feeder (see the module docstring)."""

  def __init__(
    self,
    *,
    files: Sequence[str],
    batching: Batching,
    read_chunks: Callable[[tf.Tensor, int], tf.data.Dataset],
    chunk_records: Callable[[], int],
    decode: Decode,
    feature_names: Sequence[str],
    label_names: Sequence[str],
    decode_chunks: bool,
    record_index: Callable[[], RecordIndex | None] | None = None,
  ):
    """Holds the format's three steps and the batching options.

    Args:
      files: the files of a pass, in order (shuffled per pass if asked).
      batching: the batching and shuffling options.
      read_chunks: `(path, chunk)` -> the records of one file as batches of
        up to `chunk` records, in order.
      chunk_records: records per chunk; called once per pass, when the
        pipeline is built (it may read the files the first time).
      decode: a batch of records -> `{name: tensor}` of every feature and label.
      feature_names / label_names: which decoded names are features, which labels.
      decode_chunks: decode whole chunks, then cut them into batches (every
        decoded value has one fixed shape per example, so decoded chunks
        concatenate); else cut records into batches, then decode each.
      record_index: the files' record index (built on the first call), or
        None when they cannot be read by offset now (compressed, no native
        ops); leave it unset for a format whose records have no offsets.
        With one, `shuffle: 'global'` and unshuffled passes over several
        input pipelines read by record (`_indexed_chunks`).
    """
    self.files = list(files)
    self.batching = batching
    self._read_chunks = read_chunks
    self._chunk_records = chunk_records
    self._decode = decode
    self._feature_names = list(feature_names)
    self._label_names = list(label_names)
    self._decode_chunks = decode_chunks
    self._record_index = record_index

  def dataset(
    self, epochs: int | None = None, *, input_context: tf.distribute.InputContext | None = None
  ) -> tf.data.Dataset:
    """Batches of `(features, labels)` dicts, or `features` alone (see `Feeder.dataset`).

    Raises:
      UserError: `batch_size` does not split evenly across the replicas.
    """
    batch_size = self.replica_batch_size(input_context)
    # Each pass is built from its epoch number, so its order is a function of
    # (seed, epoch) alone: a restored iterator replays later epochs exactly.
    passes = tf.data.Dataset.counter() if epochs is None else tf.data.Dataset.range(epochs)
    # Not AutoGraph-converted (nor, inside it, the interleave and map
    # functions): no tensor-dependent Python control flow here, and
    # converting these took a second of the first step (benchmarks/README.md).
    one_pass = tf.autograph.experimental.do_not_convert(
      lambda epoch: self._one_pass(epoch, batch_size, input_context)
    )
    batches = passes.flat_map(one_pass)
    prefetch = self.batching.prefetch
    if prefetch == 0:  # Off: the consumer waits for each batch.
      return batches
    return batches.prefetch(tf.data.AUTOTUNE if prefetch is None else prefetch)

  def examples_in_pass(self, records: int) -> int:
    """The examples of a pass over files holding `records`: at most `max_examples` when set."""
    max_examples = self.batching.max_examples
    return min(records, max_examples) if max_examples >= 0 else records

  def steps_per_epoch(self, num_examples: int) -> int:
    """Batches in a pass of `num_examples` (the last one short unless drop_remainder)."""
    batch_size = self.batching.batch_size
    return num_examples // batch_size if self.batching.drop_remainder else -(-num_examples // batch_size)

  def replica_batch_size(self, input_context: tf.distribute.InputContext | None) -> int:
    """`batch_size` is the global batch: each replica gets its share (see `replica_batch_size`)."""
    return replica_batch_size(self.batching.batch_size, input_context)

  def _one_pass(
    self, epoch: tf.Tensor, batch_size: int, input_context: tf.distribute.InputContext | None
  ) -> tf.data.Dataset:
    """The decoded batches of pass `epoch`; the last may be short unless drop_remainder."""
    chunks = self.record_chunks(epoch, input_context)
    maps = self.batching.num_parallel_maps
    calls = tf.data.AUTOTUNE if maps is None else maps
    parallel = {"num_parallel_calls": calls, "deterministic": self.batching.deterministic}
    drop_remainder = self.batching.drop_remainder
    if self._decode_chunks:
      # Slicing decoded tensors into batches is cheaper than decoding each
      # batch: 2x the examples/s at batch 10.
      return chunks.map(self._parse, **parallel).rebatch(batch_size, drop_remainder=drop_remainder)
    # Variable-length values and images are parsed and decoded per batch.
    batches = chunks.rebatch(batch_size, drop_remainder=drop_remainder)
    return batches.map(self._parse, **parallel)

  def record_chunks(
    self, epoch: tf.Tensor | int, input_context: tf.distribute.InputContext | None
  ) -> tf.data.Dataset:
    """Pass `epoch` as chunks of records, in order: this input pipeline's share of them.

    Read by record index when `_indexed_chunks` can; else the files are
    interleaved in whole chunks. Shuffling, `max_examples` and keeping every
    n-th record then need single records (`_record_level`).
    """
    indexed = self._indexed_chunks(epoch, input_context)
    if indexed is not None:
      return indexed
    chunk = self._chunk_records()
    pipelines = input_context.num_input_pipelines if input_context else 1
    # Whole files per pipeline read the least; with fewer files than
    # pipelines (or a global max_examples cut) every pipeline reads all files
    # and keeps every n-th record instead.
    shard_files = pipelines > 1 and len(self.files) >= pipelines and self.batching.max_examples < 0
    files = tf.constant(self.files)
    if self.batching.shuffle:
      # Every pipeline shuffles with the same seed, so their shards partition the files.
      seed = tf.stack([tf.constant(self.batching.seed, tf.int64), tf.cast(epoch, tf.int64)])
      files = tf.random.experimental.stateless_shuffle(files, seed=seed)
    files = tf.data.Dataset.from_tensor_slices(files)
    if shard_files:
      files = files.shard(pipelines, input_context.input_pipeline_id)
    chunks = files.interleave(
      lambda path: self._read_chunks(path, chunk),
      cycle_length=max(1, min(self.batching.num_parallel_reads, len(self.files))),
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=self.batching.deterministic,
    )
    shard_records = pipelines > 1 and not shard_files
    if not (self.batching.shuffle or self.batching.max_examples >= 0 or shard_records):
      return chunks
    return self._record_level(chunks, epoch, chunk, input_context if shard_records else None)

  def _record_level(
    self,
    chunks: tf.data.Dataset,
    epoch: tf.Tensor | int,
    chunk: int,
    shard: tf.distribute.InputContext | None,
  ) -> tf.data.Dataset:
    """`chunks` unbatched, cut at `max_examples`, sharded by record, buffer-shuffled and re-chunked."""
    records = chunks.unbatch()
    if self.batching.max_examples >= 0:
      records = records.take(self.batching.max_examples)
    if shard is not None:
      records = records.shard(shard.num_input_pipelines, shard.input_pipeline_id)
    if self.batching.shuffle:
      seed = self.batching.seed + epoch * _EPOCH_SEED_STRIDE
      records = _shuffle(records, self.batching.shuffle_buffer_size, seed)
    return records.batch(chunk)

  def _indexed_chunks(
    self, epoch: tf.Tensor | int, input_context: tf.distribute.InputContext | None
  ) -> tf.data.Dataset | None:
    """Pass `epoch` read by record index (`deephub.io.global_shuffle`), or None to read file by file.

    `shuffle: 'global'` always reads by index: a full permutation of every
    record per epoch. Unshuffled passes over several input pipelines do too
    when the records can be indexed: each pipeline then reads every n-th
    record of the pass, so all get the same number of batches whatever the
    file sizes. A buffer shuffle, and formats or files without an index,
    keep the whole-file (or every n-th record) shards of `record_chunks`.
    """
    pipelines = input_context.num_input_pipelines if input_context else 1
    shuffle = self.batching.shuffle
    by_record = shuffle == "global" or (pipelines > 1 and not shuffle)
    index = self._record_index() if self._record_index is not None and by_record else None
    if index is None:
      return None
    total = index.num_records
    max_examples = self.batching.max_examples
    return global_shuffle.epoch_chunks(
      index,
      epoch,
      seed=self.batching.seed,
      shuffle=shuffle == "global",
      num_examples=min(total, max_examples) if max_examples >= 0 else total,
      pipelines=pipelines,
      pipeline_id=input_context.input_pipeline_id if input_context else 0,
      drop_remainder=self.batching.drop_remainder,
      deterministic=self.batching.deterministic,
    )

  def _parse(self, batch: Any) -> dict[str, tf.Tensor] | tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
    decoded = self._decode(batch)
    features = {name: decoded[name] for name in self._feature_names}
    if not self._label_names:
      return features
    return features, {name: decoded[name] for name in self._label_names}


def replica_batch_size(batch_size: int, input_context: tf.distribute.InputContext | None) -> int:
  """The batch of one replica: a feeder's `batch_size` is the global batch.

  Raises:
    UserError: `batch_size` does not split evenly across the replicas.
  """
  if input_context is None:
    return batch_size
  replicas = input_context.num_replicas_in_sync
  if batch_size % replicas:
    raise UserError(
      f"feeder batch_size {batch_size} is the global batch and must split evenly "
      f"across {replicas} replicas; set it to a multiple of {replicas}"
    )
  return batch_size // replicas


def list_files(patterns: Sequence[str]) -> tuple[list[str], list[int]]:
  """The files the patterns match, sorted per pattern, and their sizes in bytes.

  Raises:
    UserError: a pattern matches no file, or matches an empty file.
  """
  files, sizes = [], []
  for pattern in patterns:
    remote.ensure_filesystem(pattern, where="file pattern")
    if filesystem.is_recursive(pattern):  # `**` matches folders at any depth; keep the files.
      found = [path for path in filesystem.glob(pattern) if not tf.io.gfile.isdir(path)]
    else:
      found = tf.io.gfile.glob(pattern)
    matched = [path for path in found if not metadata.is_metadata_path(path)]
    if not matched:
      raise UserError(f"file pattern {pattern!r} matches no file; check the path or glob")
    for path in sorted(matched):
      size = tf.io.gfile.stat(path).length
      if size == 0:
        raise UserError(f"{path} (from {pattern!r}) is an empty file; remove it or narrow the pattern")
      files.append(path)
      sizes.append(size)
  return files, sizes


def _shuffle(records: tf.data.Dataset, buffer_size: int, seed: tf.Tensor | int) -> tf.data.Dataset:
  """`records.shuffle(buffer_size, seed=seed)`, also under a global seed TensorFlow cannot combine.

  With a tensor `seed` (it depends on the epoch) and a global seed that is 0
  modulo 2**31 - 1 (`runtime.seed` 0, say), TensorFlow's seed helper compares
  the two in Python and fails on the tensor. Under such a global seed only,
  the shuffle is built with the graph seed unset: its order is then a
  function of `seed` alone, as reproducible as under any other global seed.
  """
  graph = tf.compat.v1.get_default_graph()
  if tf.executing_eagerly() or graph.seed is None or graph.seed % _MAX_INT32 != 0:
    return records.shuffle(buffer_size, seed=seed)
  global_seed, graph.seed = graph.seed, None
  try:
    return records.shuffle(buffer_size, seed=seed)
  finally:
    graph.seed = global_seed


def check_feeder_keys(
  *,
  file_patterns: Sequence[str],
  batch_size: int,
  features_map: Mapping,
  shuffle: bool | str,
  shuffle_buffer_size: int,
  max_examples: int,
  num_parallel_maps: int | None,
  prefetch: int | None,
) -> None:
  """The checks every file-backed feeder makes first.

  Raises:
    UserError: no file pattern, one that is no string, a batch_size below 1 or above a positive
      max_examples, an empty features_map, an unknown shuffle, a
      shuffle_buffer_size below 1 with shuffle True, or a num_parallel_maps
      / prefetch that is no count.
  """
  if not file_patterns:
    raise UserError("feeder file_patterns is empty; set it to a list of TFRecord globs")
  not_text = [pattern for pattern in file_patterns if not isinstance(pattern, str)]
  if not_text:
    raise UserError(f"feeder file_patterns holds {not_text[0]!r}; each entry must be a path glob (a string)")
  if batch_size < 1:
    raise UserError(f"feeder batch_size is {batch_size}; set it to 1 or more")
  if not features_map:
    raise UserError("feeder features_map is empty; name at least one feature")
  if not (isinstance(shuffle, bool) or shuffle == "global"):
    raise UserError(f"feeder shuffle is {shuffle!r}; use False, True (a buffer shuffle) or 'global'")
  if shuffle is True and (not _is_count(shuffle_buffer_size) or shuffle_buffer_size < 1):
    # tf.data's shuffle refuses it only once the pipeline runs, as a graph error.
    raise UserError(
      f"feeder shuffle_buffer_size is {shuffle_buffer_size!r}; set it to 1 or more, or shuffle to False"
    )
  if num_parallel_maps is not None and (not _is_count(num_parallel_maps) or num_parallel_maps < 1):
    raise UserError(
      f"feeder num_parallel_maps is {num_parallel_maps!r}; set it to 1 or more, or None (AUTOTUNE)"
    )
  if prefetch is not None and (not _is_count(prefetch) or prefetch < 0):
    raise UserError(f"feeder prefetch is {prefetch!r}; set it to 0 (off), more, or None (AUTOTUNE)")
  if 0 < max_examples < batch_size:
    raise UserError(
      f"feeder batch_size {batch_size} exceeds max_examples {max_examples}; "
      "lower batch_size, or raise max_examples (-1 uses all examples)"
    )


def _is_count(value: Any) -> bool:
  """An int that is no bool (True is an int to Python, not a count)."""
  return isinstance(value, int) and not isinstance(value, bool)

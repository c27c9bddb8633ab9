"""TFRecordExamplesFeeder: tf.Example records to batched feature dicts.

The pipeline keeps all per-record work in TensorFlow's C++ kernels and
passes as few dataset elements as it can: each file is read in chunks of
serialized records (up to 1024 records or 4 MiB), the parallel interleave
hands over whole chunks (not records), `tf.io.parse_example` decodes a
chunk in one op, and `rebatch` slices the parsed tensors into batches.
Per-element hand-offs, not parsing, were the cost: on 2 CPU cores this
reads 2x faster than interleaving single records (see benchmarks/README.md).
Shuffling and `max_examples` work on single records, so they unbatch the
chunks first. No Python runs per element or per batch.

Record counts come from each folder's `_tfrecord_metadata.json`
(`deephub.io.metadata`), so steps per epoch are known without a pass over
the data.

With `skip_corrupt_records`, uncompressed files are scanned once with the
native ops and read by record offset (`deephub.io.record_places`), so a
damaged record costs only its own bytes; without the native ops, or for
GZIP files, a damaged file loses everything after the damage.
"""

import random
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from deephub import defaults
from deephub.errors import UserError
from deephub.io import metadata, record_places, remote, validation
from deephub.io.features import example_spec
from deephub.io.tfrecord_format import check_compression, is_remote
from deephub.ops import tfrecord as native_tfrecord

# The feeder config's defaults: the keyword defaults below come from there, so
# a feeder built in Python behaves as one built from a config.
_DEFAULT = defaults.feeder_config()
# Spreads per-epoch shuffle seeds apart.
_EPOCH_SEED_STRIDE = 1_000_003
# Records per read-and-parse chunk: enough that tf.data's per-element cost is
# small against the records a chunk carries...
CHUNK_RECORDS = 1024
# ...but few enough bytes that big records (images) stay cheap to hold: each
# interleaved file has a chunk or two in flight.
_CHUNK_BYTES = 4 << 20
# Chunk size when the record counts (so the record size) are not known yet.
_UNSIZED_CHUNK_RECORDS = 64
# GZIP files are sized compressed; records take about this much more once read.
_GZIP_EXPANSION = 4


class TFRecordExamplesFeeder:
  """Reads `tf.Example` TFRecord files described by a legacy feeder config."""

  def __init__(
    self,
    *,
    file_patterns: Sequence[str] | str,
    batch_size: int,
    features_map: Mapping[str, Any],
    labels_map: Mapping[str, Any] | None = None,
    shuffle: bool = _DEFAULT.shuffle,
    shuffle_buffer_size: int = _DEFAULT.shuffle_buffer_size,
    max_examples: int = _DEFAULT.max_examples,
    drop_remainder: bool = _DEFAULT.drop_remainder,
    compression: str = _DEFAULT.compression,
    num_parallel_reads: int = _DEFAULT.num_parallel_reads,
    skip_corrupt_records: bool = _DEFAULT.skip_corrupt_records,
    deterministic: bool = _DEFAULT.deterministic,
    auto_generate_meta: bool = _DEFAULT.auto_generate_meta,
    seed: int | None = None,
    type: str = _DEFAULT.type,  # noqa: A002 - legacy key name.
  ):
    """Checks the config and lists the files.

    Args mirror the feeder config keys (see `deephub.defaults.feeder_config`);
    `seed` seeds both file and example shuffling.

    Raises:
      UserError: a pattern matches no file, a value is out of range, or a
        file's metadata entry is missing or stale (and `auto_generate_meta`
        is off).
    """
    del type  # Selects this class; nothing else to do with it.
    if isinstance(file_patterns, str):
      file_patterns = [file_patterns]
    if not file_patterns:
      raise UserError("feeder file_patterns is empty; set it to a list of TFRecord globs")
    if batch_size < 1:
      raise UserError(f"feeder batch_size is {batch_size}; set it to 1 or more")
    check_compression(compression, key="feeder compression")
    if not features_map:
      raise UserError("feeder features_map is empty; name at least one feature")
    self.files, self._file_bytes = _list_files(file_patterns)
    self.batch_size = batch_size
    self.shuffle = shuffle
    self.shuffle_buffer_size = shuffle_buffer_size
    self.max_examples = max_examples
    self.drop_remainder = drop_remainder
    self.compression = compression
    self.num_parallel_reads = num_parallel_reads
    self.skip_corrupt_records = skip_corrupt_records
    self.deterministic = deterministic
    self.seed = seed
    # Without a seed, one drawn here keeps the epochs of this run consistent.
    self._seed = seed if seed is not None else random.randrange(2**31)
    self._example_spec = example_spec(features_map, labels_map)
    self.feature_names = self._example_spec.feature_names
    self.label_names = self._example_spec.label_names
    self._spec = self._example_spec.parsing
    self._decoders = self._example_spec.decoders
    # Chunks parse before they are cut into batches only when every parsed
    # value has one fixed shape per example (so chunks concatenate).
    self._parse_chunks = self._example_spec.fixed_shapes
    # Metadata is read and written with local file APIs; remote files
    # (gs://...) are counted by one pass over the data instead.
    # Skipping corrupted records makes the count depend on what is readable,
    # so that mode counts by one tolerant pass too.
    local = not any(map(is_remote, self.files)) and not skip_corrupt_records
    self.record_counts = self._metadata_counts(auto_generate_meta) if local else None
    # Filled by `scan()` when skip_corrupt_records reads by offset.
    self._places: record_places.RecordPlaces | None = None

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
    batch_size = self._replica_batch_size(input_context)
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
    return batches.prefetch(tf.data.AUTOTUNE)

  def get_input_fn(self, epochs: int | None = None):
    """Legacy spelling: returns a callable that builds `dataset(epochs)`."""
    return lambda: self.dataset(epochs)

  def num_examples(self) -> int:
    """The examples in one pass, from the metadata (no data is read) for local files."""
    if self.record_counts is None and self._reads_by_offset():
      self.scan()
    elif self.record_counts is None and not self.compression and native_tfrecord.available():
      # No metadata (remote files): the native scan reads the headers only.
      self.record_counts = metadata.count_records(self.files)
    if self.record_counts is None:
      chunks = self._record_chunks(0, None)
      return int(chunks.reduce(tf.constant(0, tf.int64), lambda n, chunk: n + tf.size(chunk, tf.int64)))
    total = sum(self.record_counts)
    return min(total, self.max_examples) if self.max_examples >= 0 else total

  def steps_per_epoch(self, num_examples: int | None = None) -> int:
    """Returns the number of batches in one pass over the files."""
    n = self.num_examples() if num_examples is None else num_examples
    return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

  def _metadata_counts(self, auto_generate: bool) -> list[int] | None:
    """Per-file record counts from `_tfrecord_metadata.json`; None counts by reading."""
    return metadata.record_counts(self.files, compression=self.compression, auto_generate=auto_generate)

  def check_schema(self, where: str) -> None:
    """Raises a UserError when the first record does not match the maps."""
    validation.check_schema(self.files, self._example_spec, compression=self.compression, where=where)

  def explain_parse_error(self, error: Exception, where: str) -> UserError:
    """Returns a UserError naming the first record that the maps cannot parse (reads the files)."""
    from deephub.io import parse_errors  # Only this error path needs it.

    return parse_errors.explain_parse_error(
      self.files, self._spec, compression=self.compression, where=where, error=error
    )

  def scan(self) -> list[validation.FileScan]:
    """Reads every file once; reports records and corrupted files.

    The readable records it counted become the feeder's record counts, so
    `num_examples()` does not read the files a second time.
    """
    if self._reads_by_offset():
      self._places = record_places.scan_files(self.files)
      scans = [_file_scan(scan) for scan in self._places.scans]
    else:
      scans = validation.scan_files(self.files, compression=self.compression)
    self.record_counts = [scan.records for scan in scans]
    return scans

  def _reads_by_offset(self) -> bool:
    """Whether skip_corrupt_records resynchronises past damage (native ops, uncompressed files)."""
    return self.skip_corrupt_records and not self.compression and native_tfrecord.available()

  def explain(self, error: tf.errors.DataLossError, where: str) -> UserError:
    """Returns a UserError naming the corrupted file behind `error`."""
    return validation.data_loss_error(self.files, compression=self.compression, where=where, error=error)

  def _file_chunks(self, path: tf.Tensor, chunk: int) -> tf.data.Dataset:
    """The records of one file as vectors of up to `chunk` records."""
    if self._reads_by_offset():
      if self._places is None:
        self.scan()
      return record_places.read_chunks(self._places, path, chunk)
    return self._read_file(path).batch(chunk)

  def _read_file(self, path: tf.Tensor) -> tf.data.Dataset:
    """The records of one file, one element each (ParquetExamplesFeeder reads its rows here)."""
    records = tf.data.TFRecordDataset(path, compression_type=self.compression)
    if self.skip_corrupt_records:
      # tf.data cannot resync after a bad record (GZIP files, or no native
      # ops), so the rest of that file is skipped; `scan()` reports what was lost.
      records = records.ignore_errors(log_warning=True)
    return records

  def _one_pass(
    self, epoch: tf.Tensor, batch_size: int, input_context: tf.distribute.InputContext | None
  ) -> tf.data.Dataset:
    """The parsed batches of pass `epoch`; the last may be short unless drop_remainder."""
    chunks = self._record_chunks(epoch, input_context)
    parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": self.deterministic}
    if self._parse_chunks:
      # Slicing parsed tensors into batches is cheaper than parsing each
      # batch: 2x the examples/s at batch 10.
      return chunks.map(self._parse, **parallel).rebatch(batch_size, drop_remainder=self.drop_remainder)
    # Variable-length values and images are parsed and decoded per batch.
    batches = chunks.rebatch(batch_size, drop_remainder=self.drop_remainder)
    return batches.map(self._parse, **parallel)

  def _chunk_records(self) -> int:
    """Records per chunk: `CHUNK_RECORDS`, fewer when that would exceed `_CHUNK_BYTES`."""
    if self.record_counts is None and self._reads_by_offset():
      self.scan()  # Reading by offset needs the scan anyway; it also gives the counts.
    records = sum(self.record_counts or [])
    if not records:
      return _UNSIZED_CHUNK_RECORDS
    record_bytes = sum(self._file_bytes) / records * (_GZIP_EXPANSION if self.compression else 1)
    return int(max(1, min(CHUNK_RECORDS, _CHUNK_BYTES // max(record_bytes, 1))))

  def _record_chunks(
    self, epoch: tf.Tensor | int, input_context: tf.distribute.InputContext | None
  ) -> tf.data.Dataset:
    """Pass `epoch` as vectors of serialized records, in order: this input pipeline's share of them.

    The files are interleaved in whole chunks. Shuffling, `max_examples` and
    keeping every n-th record need single records, so then the chunks are
    unbatched, and the records re-chunked afterwards.
    """
    chunk = self._chunk_records()
    pipelines = input_context.num_input_pipelines if input_context else 1
    # Whole files per pipeline read the least; with fewer files than
    # pipelines (or a global max_examples cut) every pipeline reads all files
    # and keeps every n-th record instead.
    shard_files = pipelines > 1 and len(self.files) >= pipelines and self.max_examples < 0
    files = tf.constant(self.files)
    if self.shuffle:
      # Every pipeline shuffles with the same seed, so their shards partition the files.
      seed = tf.stack([tf.constant(self._seed, tf.int64), tf.cast(epoch, tf.int64)])
      files = tf.random.experimental.stateless_shuffle(files, seed=seed)
    files = tf.data.Dataset.from_tensor_slices(files)
    if shard_files:
      files = files.shard(pipelines, input_context.input_pipeline_id)
    chunks = files.interleave(
      lambda path: self._file_chunks(path, chunk),
      cycle_length=max(1, min(self.num_parallel_reads, len(self.files))),
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=self.deterministic,
    )
    shard_records = pipelines > 1 and not shard_files
    if not (self.shuffle or self.max_examples >= 0 or shard_records):
      return chunks
    records = chunks.unbatch()
    if self.max_examples >= 0:
      records = records.take(self.max_examples)
    if shard_records:
      records = records.shard(pipelines, input_context.input_pipeline_id)
    if self.shuffle:
      records = records.shuffle(self.shuffle_buffer_size, seed=self._seed + epoch * _EPOCH_SEED_STRIDE)
    return records.batch(chunk)

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

  def _decode(self, batch: tf.Tensor) -> dict[str, tf.Tensor]:
    """A batch of records as `{name: tensor}` for every features_map / labels_map entry."""
    parsed = tf.io.parse_example(batch, self._spec)
    # Per-batch decoding (images): graph ops over the whole batch, no Python.
    parsed.update({name: decode(parsed[name]) for name, decode in self._decoders.items()})
    return parsed

  def _parse(self, batch):
    parsed = self._decode(batch)
    features = {name: parsed[name] for name in self.feature_names}
    if not self.label_names:
      return features
    return features, {name: parsed[name] for name in self.label_names}


def _file_scan(scan: native_tfrecord.TFRecordScan) -> validation.FileScan:
  """A native scan as the feeder reports it (corrupt ranges are skipped, not the rest of the file)."""
  ranges = len(scan.corrupt_offsets)
  error = f"{ranges} damaged range(s) from byte offset {scan.corrupt_offsets[0]}" if ranges else ""
  return validation.FileScan(
    scan.path, scan.num_records, error=error, skipped_bytes=scan.corrupt_bytes, corrupt_ranges=ranges
  )


def _list_files(patterns: Sequence[str]) -> tuple[list[str], list[int]]:
  """The files the patterns match, sorted per pattern, and their sizes in bytes."""
  files, sizes = [], []
  for pattern in patterns:
    remote.ensure_filesystem(pattern, where="file pattern")
    matched = [path for path in tf.io.gfile.glob(pattern) if not path.endswith(metadata.METADATA_FILENAME)]
    if not matched:
      raise UserError(f"file pattern {pattern!r} matches no file; check the path or glob")
    for path in sorted(matched):
      size = tf.io.gfile.stat(path).length
      if size == 0:
        raise UserError(f"{path} (from {pattern!r}) is an empty file; remove it or narrow the pattern")
      files.append(path)
      sizes.append(size)
  return files, sizes

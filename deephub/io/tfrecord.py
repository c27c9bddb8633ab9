"""TFRecordExamplesFeeder: tf.Example records to batched feature dicts.

The batching, shuffling and sharding are the shared `ExamplesPipeline`
(`deephub.io.examples_pipeline`); this feeder gives it the TFRecord parts:
each file is read in chunks of serialized records (up to 1024 records or
4 MiB) and `tf.io.parse_example` decodes a chunk (or a batch) in one op.

Record counts come from each folder's `_tfrecord_metadata.json`
(`deephub.io.metadata`), so steps per epoch are known without a pass over
the data.

With `skip_corrupt_records`, uncompressed files are scanned once with the
native ops and read by record offset (`deephub.io.record_places`), so a
damaged record costs only its own bytes; without the native ops, or for
compressed (GZIP, ZLIB) files, a damaged file loses everything after the damage.

With `shuffle: 'global'` (and for record-exact shards across workers) a
pass is read through a record index instead, in any order
(`deephub.io.record_index`, `deephub.io.global_shuffle`); this feeder builds
the index, the shared pipeline reads through it.
"""

import random
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from deephub.config import defaults
from deephub.errors import UserError
from deephub.io import corrupt_records, global_shuffle, metadata, record_index, record_places, validation
from deephub.io.examples_pipeline import (
  CHUNK_RECORDS,
  Batching,
  ExamplesPipeline,
  check_feeder_keys,
  list_files,
)
from deephub.io.features import example_spec
from deephub.io.tfrecord_format import check_compression, is_remote
from deephub.ops import tfrecord as native_tfrecord

# The feeder config's defaults: the keyword defaults below come from there, so
# a feeder built in Python behaves as one built from a config.
_DEFAULT = defaults.feeder_config()
# `runtime.max_index_bytes`' default (deephub.config.defaults): a 268M-record index.
DEFAULT_MAX_INDEX_BYTES = 4 << 30
# Chunks hold at most CHUNK_RECORDS records, and few enough bytes that big
# records (images) stay cheap to hold: each interleaved file has a chunk or
# two in flight.
_CHUNK_BYTES = 4 << 20
# Chunk size when the record counts (so the record size) are not known yet.
_UNSIZED_CHUNK_RECORDS = 64
# Compressed files are sized as stored; records take about this much more once read.
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
    shuffle: bool | str = _DEFAULT.shuffle,
    shuffle_buffer_size: int = _DEFAULT.shuffle_buffer_size,
    max_examples: int = _DEFAULT.max_examples,
    drop_remainder: bool = _DEFAULT.drop_remainder,
    compression: str = _DEFAULT.compression,
    num_parallel_reads: int = _DEFAULT.num_parallel_reads,
    num_parallel_maps: int | None = _DEFAULT.num_parallel_maps,
    prefetch: int | None = _DEFAULT.prefetch,
    skip_corrupt_records: bool = _DEFAULT.skip_corrupt_records,
    deterministic: bool = _DEFAULT.deterministic,
    auto_generate_meta: bool = _DEFAULT.auto_generate_meta,
    seed: int | None = None,
    max_index_bytes: int = DEFAULT_MAX_INDEX_BYTES,
    type: str = _DEFAULT.type,  # noqa: A002 - legacy key name.
  ):
    """Checks the config and lists the files.

    Args mirror the feeder config keys (see `deephub.config.defaults.feeder_config`);
    `seed` seeds both file and example shuffling; `max_index_bytes` is
    `runtime.max_index_bytes`, the most the record index of `shuffle:
    'global'` may take.

    Raises:
      UserError: a pattern matches no file, a value is out of range, or a
        file's metadata entry is missing or stale (and `auto_generate_meta`
        is off).
    """
    del type  # Selects this class; nothing else to do with it.
    if isinstance(file_patterns, str):
      file_patterns = [file_patterns]
    check_feeder_keys(
      file_patterns=file_patterns,
      batch_size=batch_size,
      features_map=features_map,
      shuffle=shuffle,
      shuffle_buffer_size=shuffle_buffer_size,
      max_examples=max_examples,
      num_parallel_maps=num_parallel_maps,
      prefetch=prefetch,
    )
    check_compression(compression, key="feeder compression")
    self.files, self._file_bytes = list_files(file_patterns)
    self.batch_size = batch_size
    self.shuffle = shuffle
    self.shuffle_buffer_size = shuffle_buffer_size
    self.max_examples = max_examples
    self.drop_remainder = drop_remainder
    self.compression = compression
    self.num_parallel_reads = num_parallel_reads
    self.num_parallel_maps = num_parallel_maps
    self.prefetch = prefetch
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
    # Metadata is read and written with local file APIs; remote files
    # (gs://...) are counted by one pass over the data instead.
    # Skipping corrupted records makes the count depend on what is readable,
    # so that mode counts by one tolerant pass too.
    local = not any(map(is_remote, self.files)) and not skip_corrupt_records
    self.record_counts = self._metadata_counts(auto_generate_meta) if local else None
    # Filled by `scan()` when skip_corrupt_records reads by offset.
    self._places: record_places.RecordPlaces | None = None
    # The record index, built on first use by shuffle: 'global' and record-exact shards.
    self._index: record_index.RecordIndex | None = None
    self._max_index_bytes = max_index_bytes
    if shuffle == "global":
      global_shuffle.check_usable(
        feeder=self.__class__.__name__,
        addressable=True,
        compression=compression,
        records=sum(self.record_counts) if self.record_counts is not None else None,
        max_index_bytes=max_index_bytes,
      )
    batching = Batching(
      batch_size=batch_size,
      shuffle=shuffle,
      shuffle_buffer_size=shuffle_buffer_size,
      max_examples=max_examples,
      drop_remainder=drop_remainder,
      num_parallel_reads=num_parallel_reads,
      deterministic=deterministic,
      seed=self._seed,
      num_parallel_maps=num_parallel_maps,
      prefetch=prefetch,
    )
    self._pipeline = ExamplesPipeline(
      files=self.files,
      batching=batching,
      read_chunks=self._file_chunks,
      chunk_records=self._chunk_records,
      decode=self._decode,
      feature_names=self.feature_names,
      label_names=self.label_names,
      # Chunks parse before they are cut into batches only when every parsed
      # value has one fixed shape per example (so chunks concatenate).
      decode_chunks=self._example_spec.fixed_shapes,
      record_index=self._record_index,
    )

  def dataset(
    self, epochs: int | None = None, *, input_context: tf.distribute.InputContext | None = None
  ) -> tf.data.Dataset:
    """Returns batches of `(features, labels)` dicts, or `features` alone.

    Args:
      epochs: passes over the files; None repeats forever. Batches never
        span two passes, so a pass is exactly `steps_per_epoch()` batches.
      input_context: given by `strategy.distribute_datasets_from_function`:
        this pipeline reads its share of the data (every n-th record of the
        pass with shuffle 'global', or False where records can be indexed;
        else whole files when there are enough, else every n-th record) in
        per-replica batches of `batch_size / replicas`, as `batch_size` is
        the global batch.

    Raises:
      UserError: `batch_size` does not split evenly across the replicas.
    """
    return self._pipeline.dataset(epochs, input_context=input_context)

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
      chunks = self._pipeline.record_chunks(0, None)
      return int(chunks.reduce(tf.constant(0, tf.int64), lambda n, chunk: n + tf.size(chunk, tf.int64)))
    return self._pipeline.examples_in_pass(sum(self.record_counts))

  def steps_per_epoch(self, num_examples: int | None = None) -> int:
    """Returns the number of batches in one pass over the files."""
    return self._pipeline.steps_per_epoch(self.num_examples() if num_examples is None else num_examples)

  def total_steps(self, epochs: int) -> int:
    """Batches in `epochs` passes: `epochs * steps_per_epoch()`.

    Batches never span two passes here; the old framework batched across
    epochs (ceil(epochs * examples / batch_size) steps), so with a partial
    last batch this is up to `epochs - 1` steps more than it gave.
    """
    return epochs * self.steps_per_epoch()

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

  def report_corrupt_records(self) -> dict[str, float]:
    """Feeder hook: with skip_corrupt_records, scans once and logs what is skipped; else {}."""
    if not self.skip_corrupt_records:
      return {}
    return corrupt_records.report(self.scan(), compression=self.compression)

  def describe(self) -> str:
    """Feeder hook: what it reads, for messages."""
    return f"{len(self.files)} file(s)"

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
    """The records of one file, one element each."""
    records = tf.data.TFRecordDataset(path, compression_type=self.compression)
    if self.skip_corrupt_records:
      # tf.data cannot resync after a bad record (compressed files, or no native
      # ops), so the rest of that file is skipped; `scan()` reports what was lost.
      records = records.ignore_errors(log_warning=True)
    return records

  def _chunk_records(self) -> int:
    """Records per chunk: `CHUNK_RECORDS`, fewer when that would exceed `_CHUNK_BYTES`."""
    if self.record_counts is None and self._reads_by_offset():
      self.scan()  # Reading by offset needs the scan anyway; it also gives the counts.
    records = sum(self.record_counts or [])
    if not records:
      return _UNSIZED_CHUNK_RECORDS
    record_bytes = sum(self._file_bytes) / records * (_GZIP_EXPANSION if self.compression else 1)
    return int(max(1, min(CHUNK_RECORDS, _CHUNK_BYTES // max(record_bytes, 1))))

  def _record_index(self) -> record_index.RecordIndex | None:
    """The files' record index, built once; None when records cannot be read by offset.

    Compressed (GZIP, ZLIB) streams cannot be entered at an offset, and
    reading by offset needs the native ops: then the pipeline keeps its
    whole-file shards (shuffle 'global' was refused in __init__).
    """
    if self.compression or not native_tfrecord.available():
      return None
    if self._index is None:
      with tf.init_scope():  # Scanned once, eagerly, even when first asked inside a pass's graph.
        self._index = record_index.build(
          self.files,
          max_index_bytes=self._max_index_bytes,
          where=f"feeder shuffle {self.shuffle!r}",
          verify_data_crc=self.skip_corrupt_records,
        )
      self.record_counts = self._index.counts
    return self._index

  def _decode(self, batch: tf.Tensor) -> dict[str, tf.Tensor]:
    """A batch of records as `{name: tensor}` for every features_map / labels_map entry."""
    parsed = tf.io.parse_example(batch, self._spec)
    # Per-batch decoding (images): graph ops over the whole batch, no Python.
    parsed.update({name: decode(parsed[name]) for name, decode in self._decoders.items()})
    return parsed


def _file_scan(scan: native_tfrecord.TFRecordScan) -> validation.FileScan:
  """A native scan as the feeder reports it (corrupt ranges are skipped, not the rest of the file)."""
  ranges = len(scan.corrupt_offsets)
  error = f"{ranges} damaged range(s) from byte offset {scan.corrupt_offsets[0]}" if ranges else ""
  return validation.FileScan(
    scan.path, scan.num_records, error=error, skipped_bytes=scan.corrupt_bytes, corrupt_ranges=ranges
  )

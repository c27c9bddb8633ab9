"""One pass over TFRecord files in any record order: `shuffle: 'global'` and record-exact shards.

With a record index (`deephub.io.record_index`) every record is addressable,
so a pass can visit the records in any order:

- `shuffle: 'global'`: each epoch is a full random permutation of every
  record of every file, `stateless_shuffle(range(records), seed=(seed, epoch))`:
  a pure function of (seed, epoch), so a restored iterator replays an epoch
  exactly (the input-state checkpoint stores only the epoch and the position).
- Sharding under tf.distribute: pipeline i of n reads positions i, i + n,
  i + 2n, ... of the epoch's order, so every pipeline reads the same number
  of records whatever the file sizes, and together they read each record
  once. When the records do not split evenly, the last positions wrap around
  to the start of the order (a few records are read twice that epoch), or,
  with `drop_remainder`, the few left over are dropped: either way the steps
  per epoch stay those of one worker reading everything.

Reading. Positions are taken in chunks of many records; a chunk's records
are grouped by file (a sort inside the graph) and read with one native
`tfrecord_read` per file (which checks every data CRC), then put back in
the epoch's order with a gather. The permutation, the gathers and the reads
are TensorFlow ops: no Python runs per record or per chunk.

Memory: the index (16 bytes per record) plus the epoch's order (8 bytes per
record, for the pass being read and the one prefetched after it).
"""

import tensorflow as tf

from deephub.errors import UserError
from deephub.io import record_index
from deephub.io.record_index import RecordIndex
from deephub.ops import loader
from deephub.ops import tfrecord as native

# Bytes of record data per chunk: big enough that the per-chunk sort and the
# per-file reads are cheap per record, small enough to hold a few in flight.
CHUNK_BYTES = 2 << 20
# Records per chunk at most (small records), and at least.
MAX_CHUNK_RECORDS = 1 << 16
MIN_CHUNK_RECORDS = 64
# Chunks a pass is cut into at least (when it has the records).
_MIN_CHUNKS_PER_PASS = 16
# A chunk whose records lie closer than this on average lets `tfrecord_read`
# merge neighbours across gaps into few large reads; in sparser chunks only
# records that touch share a read: merging would read the gaps too.
_DENSE_GAP_BYTES = 4 << 10
# The merge gap for dense chunks (the op's default).
_MERGE_GAP_BYTES = 256 << 10


def check_usable(
  *, feeder: str, addressable: bool, compression: str, records: int | None, max_index_bytes: int
) -> None:
  """Raises a one-line UserError when `shuffle: 'global'` cannot work for a feeder, before any data is read.

  Args:
    feeder: the feeder's class name.
    addressable: whether its files are TFRecord files, readable by offset.
    compression: its `compression` key.
    records: the records its metadata counts, when known (checked against
      `max_index_bytes` now rather than after scanning).
    max_index_bytes: `runtime.max_index_bytes`.
  """
  if not addressable:
    raise UserError(
      f"feeder shuffle is 'global', which reads TFRecord records by offset; {feeder} "
      "cannot, so use shuffle: True"
    )
  if compression:
    raise UserError(
      f"feeder shuffle is 'global', which reads records by offset, but compression is "
      f"{compression!r} and a compressed file cannot be entered at an offset; "
      "use shuffle: True, or write the files uncompressed"
    )
  if not native.available():
    raise UserError(
      f"feeder shuffle is 'global', which needs the native TFRecord ops ({loader.status().describe()}); "
      "install a C++ compiler (apt-get install g++) or use shuffle: True"
    )
  if records is not None:
    record_index.check_fits(records, max_index_bytes, where="feeder shuffle 'global'")


def chunk_records(index: RecordIndex, records: int) -> int:
  """Records per read chunk for this index's average record size, when a pass reads `records`."""
  average = max(1, index.data_bytes // max(1, index.num_records))
  # A small pass still comes in several chunks, so reads and parsing overlap.
  few = -(-records // _MIN_CHUNKS_PER_PASS)
  return int(max(MIN_CHUNK_RECORDS, min(MAX_CHUNK_RECORDS, CHUNK_BYTES // average, few)))


def epoch_chunks(
  index: RecordIndex,
  epoch: tf.Tensor,
  *,
  seed: int,
  shuffle: bool,
  num_examples: int,
  pipelines: int = 1,
  pipeline_id: int = 0,
  drop_remainder: bool = False,
  deterministic: bool = True,
) -> tf.data.Dataset:
  """This pipeline's records of pass `epoch`, in order, as string vectors (chunks).

  Args:
    index: the files' record index.
    epoch: int64 scalar, the pass number (with `seed`, it fixes the order).
    seed: the feeder's shuffle seed.
    shuffle: permute the records; False keeps file order.
    num_examples: the records of a pass: the first `num_examples` of the
      files (the whole index, or `max_examples`).
    pipelines: input pipelines (workers) sharing the pass.
    pipeline_id: this pipeline's number in [0, pipelines).
    drop_remainder: drop the < `pipelines` records that do not split
      evenly, instead of reading a few twice.
    deterministic: keep the chunks in order when read in parallel.
  """
  per_pipeline = num_examples // pipelines if drop_remainder else -(-num_examples // pipelines)
  chunk = chunk_records(index, per_pipeline)
  # Reading a sparse chunk in file order would merge reads across the gaps.
  gap = index.data_bytes / max(1, index.num_records) * max(1, num_examples) / chunk
  dense = not shuffle or gap * pipelines <= _DENSE_GAP_BYTES
  paths = tf.constant(index.files)

  def order() -> tf.Tensor:
    """Record numbers of this pipeline's share of the pass, in reading order."""
    records = tf.range(num_examples, dtype=tf.int64)
    if shuffle:
      seeds = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
      records = tf.random.experimental.stateless_shuffle(records, seed=seeds)
    if pipelines == 1:
      return records
    positions = pipeline_id + pipelines * tf.range(per_pipeline, dtype=tf.int64)
    return tf.gather(records, positions % num_examples)

  share = order()

  def read(first: tf.Tensor) -> tf.Tensor:
    return read_records(index, paths, share[first : first + chunk], dense=dense)

  return tf.data.Dataset.range(0, per_pipeline, chunk).map(
    read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
  )


def read_records(index: RecordIndex, paths: tf.Tensor, ids: tf.Tensor, *, dense: bool) -> tf.Tensor:
  """The records numbered `ids` (int64 [n]), in that order: one `tfrecord_read` per file they are in.

  Args:
    index: the record index the numbers refer to.
    paths: string [files], `index.files` as a tensor.
    ids: record numbers (repeats allowed).
    dense: merge reads of one file's records across gaps of up to 256 KiB;
      False merges only records that touch.
  """
  # Record numbers grow with the file and the offset, so sorting them groups
  # the records by file, in file order.
  sorting = tf.argsort(ids, stable=True)
  ids_sorted = tf.gather(ids, sorting)
  files = tf.searchsorted(index.starts[1:], ids_sorted, side="right", out_type=tf.int64)
  offsets = tf.gather(index.offsets, ids_sorted)
  lengths = tf.gather(index.lengths, ids_sorted)
  count = tf.size(ids, out_type=tf.int64)
  # Each run of one file's records is one read.
  changes = tf.where(files[1:] != files[:-1])[:, 0] + 1
  bounds = tf.concat([[0], changes, [count]], axis=0)
  runs = tf.size(bounds) - 1
  merge_gap = _MERGE_GAP_BYTES if dense else 0

  def read_run(i, parts):
    begin, end = bounds[i], bounds[i + 1]
    records = native.tfrecord_read(
      paths[files[begin]], offsets[begin:end], lengths[begin:end], max_merge_gap_bytes=merge_gap
    )
    return i + 1, parts.write(i, records)

  parts = tf.TensorArray(tf.string, size=runs, infer_shape=False, element_shape=tf.TensorShape([None]))
  _, parts = tf.while_loop(lambda i, _: i < runs, read_run, (tf.constant(0), parts))
  # Back from file order to the asked order.
  return tf.gather(parts.concat(), tf.math.invert_permutation(sorting))

"""Folders of class subfolders of images to sharded tf.Example TFRecords.

  DIR/<class>/<image>  ->  OUT/train-00000-of-00008 ... OUT/labels.txt
                           OUT/_tfrecord_metadata.json

Each record holds `image/encoded` (the file's own bytes, unless converted),
`image/format` ('JPEG'), `image/class/label` (int64, 0 for the first class
of the labels list), `image/class/text`, `image/height`, `image/width`,
`image/channels` (of the stored image) and `image/filename` (the path
relative to DIR, `<class>/<file>`).

Images are decoded only to check them and to convert what is not a plain
JPEG: a PNG, GIF, BMP or WebP, or a CMYK JPEG, becomes an RGB JPEG (logged);
a file that does not decode is skipped and reported (`image_check.py`).
The checks run in TensorFlow's image kernels, a batch of files per graph
call, which release the GIL while they run, so `num_threads` worker threads
(one shard at a time each) can overlap.

A shard is written under a temporary name and renamed when complete; beside
it, `.deep_preprocessor/<shard>.json` records a fingerprint of its inputs
(paths, sizes, mtimes, labels). A rerun skips every shard whose file and
fingerprint still match, so an interrupted run resumes where it stopped and
produces the same files as an uninterrupted one.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import random
import re
import threading
from collections.abc import Callable, Sequence

import tensorflow as tf

from deephub.errors import UserError
from deephub.io import metadata
from deephub.preprocess import records
from deephub.preprocess.image_check import BadImageError, CheckedImage, check_images

log = logging.getLogger(__name__)

LABELS_FILENAME = "labels.txt"
STATE_DIRNAME = ".deep_preprocessor"
# Part of every fingerprint: bump it when the record layout changes, so old
# shards are rewritten rather than resumed.
_LAYOUT_VERSION = 1
# The legacy build_image_data shuffle seed: shards mix classes, reproducibly.
_SHUFFLE_SEED = 12345
# Images read and checked together (one graph call decodes a batch's plain
# JPEGs): enough to make the call's overhead small, few enough that a
# batch of large photos stays a few hundred MB at most.
_CHECK_BATCH = 64


@dataclasses.dataclass(frozen=True)
class ImageFile:
  """One input image and its class."""

  path: str
  relative: str  # `<class>/<file>`, stored as image/filename.
  label: int
  text: str


@dataclasses.dataclass(frozen=True)
class ShardPlan:
  """One output shard: its path and the images that go in it, in order."""

  path: str
  images: tuple[ImageFile, ...]

  @property
  def name(self) -> str:
    return os.path.basename(self.path)


@dataclasses.dataclass
class ShardResult:
  """What writing (or resuming) one shard did."""

  name: str
  records: int
  entry: metadata.FileEntry
  converted: list[tuple[str, str]]  # (path, original format)
  skipped: list[tuple[str, str]]  # (path, reason)
  resumed: bool = False


@dataclasses.dataclass
class Report:
  """The whole run: one result per shard, in shard order, and the class names."""

  shards: list[ShardResult]
  labels: list[str]

  @property
  def skipped(self) -> list[tuple[str, str]]:
    return [item for shard in self.shards for item in shard.skipped]

  @property
  def converted(self) -> list[tuple[str, str]]:
    return [item for shard in self.shards for item in shard.converted]


def read_labels(train_directory: str, labels_file: str | None) -> list[str]:
  """Class folder names in label order: the labels file's lines, else the sorted subfolders.

  Raises:
    UserError: no labels, a missing labels file, or a duplicate name.
  """
  if labels_file:
    if not os.path.isfile(labels_file):
      raise UserError(f"--labels_file {labels_file} does not exist; give one class-folder name per line")
    with open(labels_file, encoding="utf-8") as f:
      labels = [line.strip() for line in f if line.strip()]
    where = f"--labels_file {labels_file}"
  else:
    labels = sorted(
      name
      for name in os.listdir(train_directory)
      if os.path.isdir(os.path.join(train_directory, name)) and not name.startswith(".")
    )
    where = f"--train_directory {train_directory}"
  if not labels:
    raise UserError(f"{where} names no class; put each class's images in its own subfolder")
  duplicates = sorted({name for name in labels if labels.count(name) > 1})
  if duplicates:
    raise UserError(f"{where} lists {duplicates} more than once; give each class once")
  return labels


def read_map_file(map_file: str | None) -> dict[str, str]:
  """`{folder name: human-readable name}` from lines `<folder><TAB or space><name>`."""
  if not map_file:
    return {}
  if not os.path.isfile(map_file):
    raise UserError(f"--map_file {map_file} does not exist; give lines '<class folder> <readable name>'")
  names = {}
  with open(map_file, encoding="utf-8") as f:
    for line in f:
      key, _, name = line.strip().partition("\t") if "\t" in line else line.strip().partition(" ")
      if key:
        names[key] = name.strip() or key
  return names


def list_images(directory: str, labels: Sequence[str], names: dict[str, str]) -> list[ImageFile]:
  """Every file under `directory/<label>/`, shuffled with a fixed seed.

  A label without a folder contributes nothing; a folder that is not a label
  is ignored with a warning.
  """
  if not os.path.isdir(directory):
    raise UserError(f"{directory} is not a folder; give a folder of class subfolders")
  extra = sorted(
    name
    for name in os.listdir(directory)
    if os.path.isdir(os.path.join(directory, name)) and name not in labels and not name.startswith(".")
  )
  if extra:
    log.warning("%s: ignoring subfolders that are not labels: %s", directory, ", ".join(extra))
  images = []
  for index, label in enumerate(labels):
    folder = os.path.join(directory, label)
    if not os.path.isdir(folder):
      continue
    for name in sorted(os.listdir(folder)):
      path = os.path.join(folder, name)
      if name.startswith(".") or os.path.isdir(path):
        continue
      images.append(
        ImageFile(path=path, relative=f"{label}/{name}", label=index, text=names.get(label, label))
      )
  random.Random(_SHUFFLE_SEED).shuffle(images)
  return images


def shard_names(split: str, num_shards: int) -> list[str]:
  return [f"{split}-{index:05d}-of-{num_shards:05d}" for index in range(num_shards)]


def plan_shards(
  split: str, images: Sequence[ImageFile], num_shards: int, output_directory: str
) -> list[ShardPlan]:
  """Splits the images into `num_shards` contiguous runs of (nearly) equal size.

  Raises:
    UserError: fewer images than shards.
  """
  if num_shards < 1:
    raise UserError(f"--{split}_shards is {num_shards}; give 1 or more")
  if len(images) < num_shards:
    raise UserError(
      f"--{split}_shards {num_shards} is more than the {len(images)} {split} images; lower --{split}_shards"
    )
  return [
    ShardPlan(
      path=os.path.join(output_directory, name),
      images=tuple(images[index * len(images) // num_shards : (index + 1) * len(images) // num_shards]),
    )
    for index, name in enumerate(shard_names(split, num_shards))
  ]


def example(image: ImageFile, checked: CheckedImage) -> tf.train.Example:
  """The tf.Example of one checked image."""
  feature = {
    "image/encoded": records.bytes_feature(checked.encoded),
    "image/format": records.bytes_feature(b"JPEG"),
    "image/class/label": records.int64_feature(image.label),
    "image/class/text": records.bytes_feature(image.text.encode("utf-8")),
    "image/height": records.int64_feature(checked.height),
    "image/width": records.int64_feature(checked.width),
    "image/channels": records.int64_feature(checked.channels),
    "image/filename": records.bytes_feature(image.relative.encode("utf-8")),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature))


def fingerprint(plan: ShardPlan) -> str:
  """A hash of everything the shard's bytes depend on: inputs, their stats and labels."""
  digest = hashlib.sha256(f"layout {_LAYOUT_VERSION}\n".encode())
  for image in plan.images:
    try:
      stat = os.stat(image.path)
      stats = f"{stat.st_size} {stat.st_mtime_ns}"
    except OSError:
      stats = "missing"
    digest.update(f"{image.relative}\t{stats}\t{image.label}\t{image.text}\n".encode())
  return digest.hexdigest()


def _state_path(plan: ShardPlan) -> str:
  return os.path.join(os.path.dirname(plan.path), STATE_DIRNAME, plan.name + ".json")


def _resumable(plan: ShardPlan, shard_fingerprint: str) -> ShardResult | None:
  """The stored result of a complete shard with the same inputs, else None."""
  try:
    with open(_state_path(plan), encoding="utf-8") as f:
      state = json.load(f)
    entry = metadata.FileEntry(**state["entry"])
    if state["fingerprint"] != shard_fingerprint or os.path.getsize(plan.path) != entry.file_size:
      return None
    return ShardResult(
      name=plan.name,
      records=entry.total_records,
      entry=entry,
      converted=[tuple(item) for item in state["converted"]],
      skipped=[tuple(item) for item in state["skipped"]],
      resumed=True,
    )
  except (OSError, ValueError, KeyError, TypeError):
    return None


def _save_state(plan: ShardPlan, shard_fingerprint: str, result: ShardResult) -> None:
  path = _state_path(plan)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  state = {
    "fingerprint": shard_fingerprint,
    "entry": dataclasses.asdict(result.entry),
    "converted": result.converted,
    "skipped": result.skipped,
  }
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(state, f, indent=1)
  os.replace(path + ".tmp", path)


class Interrupted(Exception):
  """Raised inside a worker when the run is being stopped."""


def write_shard(
  plan: ShardPlan, *, on_image: Callable[[], None] = lambda: None, stop: threading.Event | None = None
) -> ShardResult:
  """Checks, converts and writes the plan's images to its shard, or resumes it.

  Args:
    plan: the shard.
    on_image: called after each image (written, skipped or resumed), for progress.
    stop: when set, the shard is abandoned (its temporary file removed).

  Returns:
    The records written and the images converted and skipped.
  """
  shard_fingerprint = fingerprint(plan)
  resumed = _resumable(plan, shard_fingerprint)
  if resumed is not None:
    log.info("kept %s: complete, and its inputs are unchanged", plan.name)
    for _ in plan.images:
      on_image()
    return resumed
  converted, skipped = [], []

  def serialized():
    for start in range(0, len(plan.images), _CHECK_BATCH):
      if stop is not None and stop.is_set():
        raise Interrupted
      batch = plan.images[start : start + _CHECK_BATCH]
      datas, unreadable = {}, {}
      for image in batch:
        try:
          with open(image.path, "rb") as f:
            datas[image] = f.read()
        except OSError as error:
          unreadable[image] = error.strerror or str(error)
      checks = dict(zip(datas, check_images(list(datas.values())), strict=True))
      for image in batch:  # In order, so skips and conversions are listed as the files are.
        checked = checks.get(image)
        if checked is None or isinstance(checked, BadImageError):
          skipped.append((image.path, unreadable[image] if checked is None else str(checked)))
          continue
        if checked.converted_from:
          log.info("converted %s from %s to RGB JPEG", image.path, checked.converted_from)
          converted.append((image.path, checked.converted_from))
        # Deterministic: map entries in key order, so every run (and process)
        # writes the same bytes and resumed output equals uninterrupted output.
        yield example(image, checked).SerializeToString(deterministic=True)
      for _ in batch:
        on_image()

  count = records.write_records(plan.path, serialized())
  entry = metadata.scan_file(plan.path)
  result = ShardResult(name=plan.name, records=count, entry=entry, converted=converted, skipped=skipped)
  _save_state(plan, shard_fingerprint, result)
  return result


def remove_stale_shards(output_directory: str, split: str, num_shards: int) -> list[str]:
  """Deletes `split-*-of-M` shards (and their state) of another shard count M; returns their names."""
  pattern = re.compile(rf"^{re.escape(split)}-\d{{5}}-of-(\d{{5}})$")
  stale = []
  for name in sorted(os.listdir(output_directory)):
    match = pattern.match(name)
    if match and int(match.group(1)) != num_shards:
      os.remove(os.path.join(output_directory, name))
      state = os.path.join(output_directory, STATE_DIRNAME, name + ".json")
      if os.path.exists(state):
        os.remove(state)
      stale.append(name)
  return stale


def preprocess(
  *,
  train_directory: str,
  validation_directory: str | None,
  output_directory: str,
  train_shards: int = 8,
  validation_shards: int = 2,
  num_threads: int = 2,
  labels_file: str | None = None,
  map_file: str | None = None,
  on_start: Callable[[int], None] = lambda total: None,
  on_image: Callable[[], None] = lambda: None,
) -> Report:
  """Writes the train (and validation) shards, `labels.txt` and, last, the metadata JSON.

  Args:
    train_directory, validation_directory: folders of class subfolders
      (validation optional).
    output_directory: where the shards go (created).
    train_shards, validation_shards: shard counts.
    num_threads: shards written at once.
    labels_file: class-folder names, one per line (label = line index from 0);
      default: the sorted subfolders of `train_directory`.
    map_file: optional `<folder> <readable name>` lines for image/class/text.
    on_start: called once with the number of images, before any work.
    on_image: called after each image, from the worker threads.

  Returns:
    The per-shard results, in shard order.

  Raises:
    UserError: missing folders, bad labels or shard counts.
    KeyboardInterrupt: on Ctrl-C, after the workers have stopped; complete
      shards stay and a rerun resumes after them.
  """
  if num_threads < 1:
    raise UserError(f"--num_threads is {num_threads}; give 1 or more")
  if not os.path.isdir(train_directory):
    raise UserError(f"--train_directory {train_directory} is not a folder; give a folder of class subfolders")
  labels = read_labels(train_directory, labels_file)
  names = read_map_file(map_file)
  splits = [("train", train_directory, train_shards)]
  if validation_directory:
    splits.append(("validation", validation_directory, validation_shards))
  plans = []
  for split, directory, num_shards in splits:
    plans += plan_shards(split, list_images(directory, labels, names), num_shards, output_directory)
  os.makedirs(output_directory, exist_ok=True)
  stale = [name for split, _, n in splits for name in remove_stale_shards(output_directory, split, n)]
  for name in stale:
    log.warning("removed %s: a shard of an earlier run with another shard count", name)
  # An earlier run's metadata must not describe shards this run may rewrite,
  # in case it is interrupted; it is written again, whole, at the end.
  if metadata.read_metadata(output_directory):
    records.write_metadata_entries(output_directory, {}, drop=[plan.name for plan in plans] + stale)
  on_start(sum(len(plan.images) for plan in plans))

  stop = threading.Event()
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=num_threads, thread_name_prefix="preprocess")
  try:
    futures = [pool.submit(write_shard, plan, on_image=on_image, stop=stop) for plan in plans]
    results = [future.result() for future in futures]
  except BaseException:
    # Ctrl-C or a worker's error: workers stop at their next image, removing
    # their temporary files; complete shards and their state stay.
    stop.set()
    pool.shutdown(wait=True, cancel_futures=True)
    raise
  pool.shutdown()

  with open(os.path.join(output_directory, LABELS_FILENAME), "w", encoding="utf-8") as f:
    f.writelines(f"{names.get(label, label)}\n" for label in labels)
  # Last, so an interrupted run never leaves metadata describing missing shards.
  records.write_metadata_entries(output_directory, {r.name: r.entry for r in results})
  return Report(shards=results, labels=[names.get(label, label) for label in labels])

"""Images/s of `deep preprocessor image` (2 threads) against one-process loops over the same files.

The input is 2,000 generated 256x256 RGB JPEGs (200 in quick mode) in 4
class folders: smooth gradients with noise, about as hard to decode as
photos. Ours is `deephub.preprocess.image.preprocess` with `num_threads=2`
and 8 shards into a fresh folder each round (so nothing is resumed). The
alternatives, in one process and one thread, list the files the same way
and write one TFRecord file:

- `plain_loop`: the issue's baseline: read each file, wrap its bytes in a
  tf.Example, write it. It decodes nothing, so it checks nothing.
- `checking_loop`: the same plus our check (`check_images` on batches of
  64 files, TensorFlow decodes in one graph call per batch): the same work
  as ours on one thread.

Rounds are paired (`report.run_paired`); the page cache is warm for all.
"""

import itertools
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from benchmarks.report import REPORT, paired_ratio, run_paired, store_ratios
from deephub.preprocess import image, image_check, records

GROUP = "preprocessor_image"
_CHECK_BATCH = 64
_CLASSES = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, profile):
  root = tmp_path_factory.mktemp("bench_photos")
  count = 2000 if profile.name == "full" else 200
  rng = np.random.default_rng(0)
  y, x = np.mgrid[0:256, 0:256]
  for index in range(count):
    folder = root / _CLASSES[index % len(_CLASSES)]
    folder.mkdir(exist_ok=True)
    phase = rng.random(3) * 6.28
    base = np.stack([127 + 100 * np.sin(x / (20 + 10 * c) + y / 30 + phase[c]) for c in range(3)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(folder / f"{index:05d}.jpg", quality=90)
  return root, count


def _plain_loop(directory: str, output: str, *, check: bool) -> int:
  labels = image.read_labels(directory, None)
  items = image.list_images(directory, labels, {})
  written = 0
  with tf.io.TFRecordWriter(output) as writer:
    # Batches as ours checks them (one graph call per batch); the plain loop
    # only reads.
    for start in range(0, len(items), _CHECK_BATCH):
      batch = items[start : start + _CHECK_BATCH]
      datas = []
      for item in batch:
        with open(item.path, "rb") as f:
          datas.append(f.read())
      if check:
        datas = [checked.encoded for checked in image_check.check_images(datas)]
      for item, data in zip(batch, datas, strict=True):
        feature = {
          "image/encoded": records.bytes_feature(data),
          "image/format": records.bytes_feature(b"JPEG"),
          "image/class/label": records.int64_feature(item.label),
          "image/class/text": records.bytes_feature(item.text.encode()),
          "image/filename": records.bytes_feature(item.relative.encode()),
        }
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
        written += 1
  return written


def test_preprocessor_image_against_one_process_loops(benchmark, photo_folder, profile, tmp_path):
  root, count = photo_folder
  rounds = itertools.count()
  reports = []

  def ours():
    output = tmp_path / f"ours_{next(rounds)}"
    reports.append(
      image.preprocess(
        train_directory=str(root),
        validation_directory=None,
        output_directory=str(output),
        train_shards=8,
        num_threads=2,
      )  # fmt: skip
    )

  alternatives = {
    name: (lambda check=check, name=name: _plain_loop(str(root), str(tmp_path / f"{name}.tfr"), check=check))
    for name, check in (("plain_loop", False), ("checking_loop", True))
  }
  theirs = run_paired(benchmark, ours, alternatives, rounds=profile.paired_rounds)
  mine = benchmark.stats.stats.data
  benchmark.extra_info["ours_images_per_sec"] = count / min(mine)
  ratios = []
  for name, target in (("plain_loop", 1.5), ("checking_loop", None)):
    benchmark.extra_info[f"{name}_images_per_sec"] = count / min(theirs[name])
    ratio = paired_ratio(mine, theirs[name], ours_work=count, theirs_work=count)
    ratios.append(REPORT.add_paired_ratio(GROUP, "preprocessor_2_threads", name, ratio, target))
  store_ratios(benchmark, ratios)
  # Real work: every image became a record, none resumed.
  assert sum(shard.records for shard in reports[-1].shards) == count
  assert not any(shard.resumed for shard in reports[-1].shards)
  assert os.path.getsize(tmp_path / "plain_loop.tfr") > 0

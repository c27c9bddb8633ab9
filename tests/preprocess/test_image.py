"""deephub.preprocess.image: labels, shard plans, fingerprints, interrupts and shard-count changes."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from deephub.errors import UserError
from deephub.preprocess import image


def _pixels(height=24, width=32, seed=0):
  """A smooth colour gradient with a little noise: JPEG-friendly, so re-encoding stays close."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width]
  base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
  return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def encode(pixels, fmt, mode=None):
  """Bytes of `pixels` saved by pillow as `fmt` after converting to `mode`."""
  buffer = io.BytesIO()
  picture = Image.fromarray(pixels)
  picture = picture.convert(mode) if mode else picture
  picture.save(buffer, format=fmt)
  return buffer.getvalue()


def _tree(root, classes):
  os.makedirs(root, exist_ok=True)
  for name, files in classes.items():
    os.makedirs(root / name, exist_ok=True)
    for filename in files:
      (root / name / filename).write_bytes(encode(_pixels(), "JPEG"))
  return root


def test_labels_default_to_sorted_subfolders_and_follow_a_labels_file(tmp_path):
  root = _tree(tmp_path / "train", {"zebra": ["a.jpg"], "ant": ["b.jpg"], ".hidden": ["c.jpg"]})
  assert image.read_labels(str(root), None) == ["ant", "zebra"]
  labels_file = tmp_path / "labels.txt"
  labels_file.write_text("zebra\nant\n\n")
  assert image.read_labels(str(root), str(labels_file)) == ["zebra", "ant"]
  labels_file.write_text("ant\nant\n")
  with pytest.raises(UserError, match=r"lists \['ant'\] more than once"):
    image.read_labels(str(root), str(labels_file))
  with pytest.raises(UserError, match="names no class"):
    image.read_labels(str(_tree(tmp_path / "flat", {})), None)


def test_list_images_uses_label_order_map_names_and_a_fixed_shuffle(tmp_path):
  root = _tree(tmp_path / "train", {"b": ["1.jpg", "2.jpg"], "a": ["3.jpg"], "other": ["4.jpg"]})
  images = image.list_images(str(root), ["b", "a"], {"a": "Apple"})
  assert sorted((i.relative, i.label, i.text) for i in images) == [
    ("a/3.jpg", 1, "Apple"),
    ("b/1.jpg", 0, "b"),
    ("b/2.jpg", 0, "b"),
  ]  # "other" is not a label: ignored.
  assert images == image.list_images(str(root), ["b", "a"], {"a": "Apple"})  # Same order every run.


@pytest.mark.parametrize(
  ("count", "shards", "sizes"), [(10, 3, [3, 3, 4]), (4, 4, [1, 1, 1, 1]), (5, 1, [5])]
)
def test_plan_shards_splits_evenly_with_legacy_names(count, shards, sizes):
  images = [image.ImageFile(f"/x/{i}", f"c/{i}", 0, "c") for i in range(count)]
  plans = image.plan_shards("train", images, shards, "/out")
  assert [len(plan.images) for plan in plans] == sizes
  assert plans[0].path == f"/out/train-00000-of-{shards:05d}"
  assert [i for plan in plans for i in plan.images] == images


def test_plan_shards_refuses_more_shards_than_images():
  with pytest.raises(UserError, match="--validation_shards 3 is more than the 2 validation images"):
    image.plan_shards("validation", [image.ImageFile("/x", "c/x", 0, "c")] * 2, 3, "/out")


def test_fingerprint_changes_with_content_label_or_text(tmp_path):
  path = tmp_path / "a.jpg"
  path.write_bytes(b"12345")
  plan = image.ShardPlan(str(tmp_path / "s"), (image.ImageFile(str(path), "c/a.jpg", 0, "c"),))
  before = image.fingerprint(plan)
  assert before == image.fingerprint(plan)
  relabelled = image.ShardPlan(plan.path, (image.ImageFile(str(path), "c/a.jpg", 1, "c"),))
  assert image.fingerprint(relabelled) != before
  path.write_bytes(b"123456")
  assert image.fingerprint(plan) != before


def test_an_interrupt_leaves_complete_shards_no_temp_files_and_no_stale_metadata(tmp_path):
  root = _tree(tmp_path / "train", {"a": [f"{i}.jpg" for i in range(6)]})
  out = tmp_path / "out"
  seen = []

  def interrupt_from_the_fifth_image_on():
    # Like Ctrl-C while shard 2 is rewritten (0 and 1 are resumed), raised
    # again on any later image so no worker can finish a shard after it.
    seen.append(1)
    if len(seen) >= 5:
      raise KeyboardInterrupt

  image.preprocess(
    train_directory=str(root), validation_directory=None, output_directory=str(out), train_shards=3
  )
  plans = image.plan_shards("train", image.list_images(str(root), ["a"], {}), 3, str(out))
  with open(plans[2].images[0].path, "wb") as f:  # New content for the last shard.
    f.write(encode(_pixels(seed=5), "JPEG"))
  with pytest.raises(KeyboardInterrupt):
    image.preprocess(
      train_directory=str(root), validation_directory=None, output_directory=str(out), train_shards=3,
      num_threads=1, on_image=interrupt_from_the_fifth_image_on,
    )  # fmt: skip
  # The old shard 2 stays until its replacement is complete, no temporary file
  # is left, and the metadata no longer describes shards that may change.
  assert sorted(os.listdir(out)) == [
    ".deep_preprocessor", "_tfrecord_metadata.json", "labels.txt", "train-00000-of-00003",
    "train-00001-of-00003", "train-00002-of-00003",
  ]  # fmt: skip
  assert image.metadata.read_metadata(str(out)) == {}
  report = image.preprocess(
    train_directory=str(root),
    validation_directory=None,
    output_directory=str(out),
    train_shards=3,
    num_threads=2,
  )
  assert [shard.resumed for shard in report.shards] == [True, True, False]
  assert [shard.records for shard in report.shards] == [2, 2, 2]


def test_a_changed_shard_count_removes_the_old_shards(tmp_path):
  root = _tree(tmp_path / "train", {"a": [f"{i}.jpg" for i in range(4)]})
  out = tmp_path / "out"
  for shards in (4, 2):
    image.preprocess(
      train_directory=str(root), validation_directory=None, output_directory=str(out), train_shards=shards
    )
  assert sorted(name for name in os.listdir(out) if name.startswith("train")) == [
    "train-00000-of-00002",
    "train-00001-of-00002",
  ]
  assert sorted(image.metadata.read_metadata(str(out))) == ["train-00000-of-00002", "train-00001-of-00002"]

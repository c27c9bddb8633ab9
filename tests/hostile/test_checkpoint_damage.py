"""A damaged newest checkpoint: resume from the newest one that reads, through the real CLI.

A toy run with checkpoints at 0, 10, 20 and 30 is damaged in each way a
disk, a crash or a careless user damages it; the rerun must resume from the
right step with one warning naming the bad file, never from step 0, and
leave every file it did not restore from as it was (a damaged checkpoint it
must overwrite is moved, byte for byte, to damaged_checkpoints/).
"""

import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from deephub import engine
from deephub.config import variants
from deephub.engine import train_and_evaluate
from deephub.engine.checkpoint import DAMAGED_DIR
from deephub.errors import UserError
from tests.conftest import run_cli

SCHEDULE = ["--config.train.steps_per_loop=10", "--config.train.save_checkpoint_steps=10"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
  """A toy model_dir trained 30 steps with checkpoints 0, 10, 20, 30."""
  config = variants.load_variant("toy")
  config.model.model_dir = str(tmp_path_factory.mktemp("template") / "model")
  config.train.epochs = 30  # One step per epoch.
  config.train.steps_per_loop = 10
  config.train.save_checkpoint_steps = 10
  train_and_evaluate(config)
  return config.model.model_dir


@pytest.fixture
def model_dir(template, tmp_path):
  path = str(tmp_path / "model")
  shutil.copytree(template, path)
  return path


def snapshot(model_dir, names=None):
  """{file name: bytes} of the checkpoint files (and the state file) in model_dir."""
  files = {}
  for name in sorted(os.listdir(model_dir)):
    if (name.startswith("model.ckpt-") or name == "checkpoint") and (names is None or name in names):
      with open(os.path.join(model_dir, name), "rb") as f:
        files[name] = f.read()
  return files


def files_of(model_dir, *steps):
  return [n for n in os.listdir(model_dir) if any(n.startswith(f"model.ckpt-{s}.") for s in steps)]


def truncate(path, size):
  with open(path, "r+b") as f:
    f.truncate(size)


def overwrite(path, data):
  with open(path, "wb") as f:
    f.write(data)


RANDOM = bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8))
DATA_30 = "model.ckpt-30.data-00000-of-00001"
# name: ((file, None to delete | size to truncate to | bytes to write), step resumed from,
#        text the warning holds, steps whose files the damage hit)
DAMAGE = {
  "deleted_newest_index": (("model.ckpt-30.index", None), 20, "no model.ckpt-30.index", [30]),
  "state_file_garbage": (("checkpoint", b"hello: world\nnot a state\n"), 30,
                         "checkpoint (line 1 is not CheckpointState text)", []),
  "state_file_names_missing": (("checkpoint", b'model_checkpoint_path: "model.ckpt-99"\n'), 30,
                               "model.ckpt-99 (named by the checkpoint state file, but it has no files)", []),
  "state_file_empty": (("checkpoint", b""), 30, "checkpoint (empty)", []),
  "state_file_random_bytes": (("checkpoint", RANDOM), 30, "checkpoint (not text", []),
  "truncated_data": ((DATA_30, 1000), 20, "model.ckpt-30 (Read less bytes than requested)", [30]),
  "random_bytes_index": (("model.ckpt-30.index", RANDOM), 20, "model.ckpt-30 (not an sstable", [30]),
  # Only the input position is damaged: the weights of 30 resume, the epoch starts over.
  "truncated_input_state": (("model.ckpt-30.input_state.data-00000-of-00001", 100), 30,
                            "model.ckpt-30.input_state is damaged (Read less bytes than requested)", []),
}  # fmt: skip


def damage(model_dir, name, how):
  path = os.path.join(model_dir, name)
  if how is None:
    os.remove(path)
  elif isinstance(how, int):
    truncate(path, how)
  else:
    overwrite(path, how)


@pytest.mark.parametrize("form", list(DAMAGE))
def test_resumes_from_the_newest_readable_checkpoint(model_dir, form):
  (name, how), resumed, warning, hit = DAMAGE[form]
  damage(model_dir, name, how)
  damaged = snapshot(model_dir, files_of(model_dir, *hit))
  good = {
    name: data for name, data in snapshot(model_dir).items() if name not in damaged and name != "checkpoint"
  }

  result = run_cli(
    "--variant=toy", f"--config.model.model_dir={model_dir}", "--config.train.epochs=40", *SCHEDULE
  )

  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert f"Resuming from {model_dir}/model.ckpt-{resumed} at global_step {resumed}" in result.stderr
  warnings = [line for line in result.stderr.splitlines() if warning in line]
  assert len(warnings) == 1, result.stderr[-3000:]  # Warned once.
  # Every good checkpoint file is still there, unchanged (keep_checkpoint_max is 5: none pruned).
  after = snapshot(model_dir, list(good))
  for name, data in good.items():
    if int(name.split("-")[1].split(".")[0]) <= resumed:
      assert after.get(name) == data, name
  # A damaged checkpoint the run had to write again was moved aside, byte for byte.
  for name, data in damaged.items():
    with open(os.path.join(model_dir, DAMAGED_DIR, name), "rb") as f:
      assert f.read() == data, name
  assert tf.train.load_checkpoint(model_dir).get_tensor("global_step") == 40


def test_no_readable_checkpoint_is_one_line_and_touches_nothing(model_dir):
  for name in os.listdir(model_dir):
    if name.endswith(".index"):
      overwrite(os.path.join(model_dir, name), RANDOM)
  overwrite(os.path.join(model_dir, "checkpoint"), b"")
  before = snapshot(model_dir)

  result = run_cli(
    "--variant=toy", f"--config.model.model_dir={model_dir}", "--config.train.epochs=40", *SCHEDULE
  )

  assert result.returncode == 2
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(
    f"deephub: error: resume: no checkpoint in {model_dir} is readable: checkpoint (empty); "
  )
  for step in (30, 20, 10, 0):
    assert f"model.ckpt-{step} (not an sstable" in last
  assert snapshot(model_dir) == before  # Nothing started from step 0 beside them.
  assert not os.path.exists(os.path.join(model_dir, DAMAGED_DIR))


def test_evaluate_falls_back_past_a_damaged_newest_checkpoint(model_dir):
  os.remove(f"{model_dir}/model.ckpt-30.index")
  result = run_cli("--variant=toy", f"--config.model.model_dir={model_dir}", "--mode=evaluate")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "global_step = 20" in result.stderr
  assert (
    "restore: passed over damaged checkpoint files" in result.stderr
    and "no model.ckpt-30.index" in result.stderr
  )


def test_export_and_predict_fall_back_too(model_dir, tmp_path, caplog):
  truncate(f"{model_dir}/model.ckpt-30.data-00000-of-00001", 1000)
  config = variants.load_variant("toy")
  config.model.model_dir = model_dir
  caplog.set_level(logging.WARNING, logger="absl")
  assert os.path.isfile(os.path.join(engine.export(config, str(tmp_path / "export")), "saved_model.pb"))
  assert engine.predict(config, str(tmp_path / "p.jsonl")) == 10
  passed = [r for r in caplog.records if "passed over damaged" in r.getMessage()]
  assert len(passed) == 2 and all("model.ckpt-30 (Read less bytes" in r.getMessage() for r in passed)
  for prefix in ("model.ckpt-20",):
    assert any(f"using {prefix}" in r.getMessage() for r in passed)


def test_warm_start_source_falls_back(model_dir, tmp_path, caplog):
  overwrite(f"{model_dir}/model.ckpt-30.index", RANDOM)
  config = variants.load_variant("toy")
  config.model.model_dir = str(tmp_path / "fresh")
  config.train.epochs = 1
  config.train.warm_start_check_point = model_dir
  caplog.set_level(logging.INFO, logger="absl")
  train_and_evaluate(config)
  assert any(f"Warm-started from {model_dir}/model.ckpt-20" in r.getMessage() for r in caplog.records)
  assert any(
    "passed over damaged" in r.getMessage() and "model.ckpt-30" in r.getMessage() for r in caplog.records
  )
  # An explicit damaged prefix is a one-line error naming it.
  config.model.model_dir = str(tmp_path / "fresh2")
  config.train.warm_start_check_point = f"{model_dir}/model.ckpt-30"
  with pytest.raises(UserError, match=r"checkpoint .*model.ckpt-30 is damaged \(not an sstable"):
    train_and_evaluate(config)


def test_fallback_resume_is_exact(toy_config):
  """The form of test_interrupted_run_equals_uninterrupted, with the newest checkpoint damaged."""
  toy_config.train.train_feeder.batch_size = 3  # 4 batches per epoch, shuffled: order matters.
  toy_config.train.steps_per_loop = 1
  toy_config.train.save_checkpoint_steps = 4
  straight_dir = toy_config.model.model_dir + "_straight"
  damaged_dir = toy_config.model.model_dir

  toy_config.train.epochs = 2  # 8 steps: checkpoints 0, 4, 8.
  train_and_evaluate(toy_config)
  os.remove(os.path.join(damaged_dir, "model.ckpt-8.index"))  # Resume must fall back to 4.
  toy_config.train.epochs = 3
  train_and_evaluate(toy_config)

  toy_config.model.model_dir = straight_dir
  train_and_evaluate(toy_config)
  resumed = tf.train.load_checkpoint(damaged_dir)
  straight = tf.train.load_checkpoint(straight_dir)
  assert resumed.get_tensor("global_step") == straight.get_tensor("global_step") == 12
  for key in resumed.get_variable_to_shape_map():
    np.testing.assert_array_equal(resumed.get_tensor(key), straight.get_tensor(key), err_msg=key)
  # The damaged files of step 8 were moved aside when step 8 was saved again.
  assert sorted(os.listdir(os.path.join(damaged_dir, DAMAGED_DIR))) == [
    "model.ckpt-8.data-00000-of-00001", "model.ckpt-8.input_state.data-00000-of-00001",
    "model.ckpt-8.input_state.index",
  ]  # fmt: skip

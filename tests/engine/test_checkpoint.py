"""CheckpointSaver and the TF1 names of Keras optimizer state."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from deephub.engine import checkpoint_files
from deephub.engine.checkpoint import CheckpointSaver, optimizer_entries, variable_entry
from deephub.errors import UserError


class _Net(keras.layers.Layer):
  def __init__(self):
    super().__init__(name="net")
    self.kernel = self.add_weight(name="kernel", shape=(2, 3), initializer="ones")


def setup_state(updates=3):
  net = _Net()
  optimizer = keras.optimizers.Adam(0.1, epsilon=1e-8)
  optimizer.build(net.trainable_variables)
  for _ in range(updates):
    optimizer.apply_gradients([(tf.fill((2, 3), 0.5), net.kernel)])
  step = tf.Variable(updates, dtype=tf.int64)
  variables = {v.path: v for v in net.weights}
  entries = {name: variable_entry(v) for name, v in variables.items()}
  entries.update(optimizer_entries(optimizer, variables))
  entries["global_step"] = variable_entry(step)
  return net, optimizer, step, entries


def test_tf1_names_and_values(tmp_path):
  net, optimizer, _, entries = setup_state(updates=3)
  saver = CheckpointSaver(str(tmp_path), entries)
  saver.save(3)
  reader = tf.train.load_checkpoint(str(tmp_path))
  names = set(reader.get_variable_to_shape_map())
  assert names == {
    "net/kernel",
    "net/kernel/Adam",
    "net/kernel/Adam_1",
    "beta1_power",
    "beta2_power",
    "global_step",
  }
  np.testing.assert_allclose(reader.get_tensor("beta1_power"), 0.9**4, rtol=1e-6)
  np.testing.assert_allclose(reader.get_tensor("beta2_power"), 0.999**4, rtol=1e-6)
  # Constant gradient g: m = (1 - 0.9^t) g, v = (1 - 0.999^t) g^2.
  np.testing.assert_allclose(
    reader.get_tensor("net/kernel/Adam"), np.full((2, 3), (1 - 0.9**3) * 0.5), rtol=1e-5
  )
  np.testing.assert_allclose(
    reader.get_tensor("net/kernel/Adam_1"), np.full((2, 3), (1 - 0.999**3) * 0.25), rtol=1e-4
  )
  np.testing.assert_array_equal(reader.get_tensor("net/kernel"), net.kernel.numpy())


def test_restore_round_trip_including_adam_step(tmp_path):
  _, _, _, saved_entries = setup_state(updates=7)
  CheckpointSaver(str(tmp_path), saved_entries).save(7)
  net, optimizer, step, entries = setup_state(updates=0)
  saver = CheckpointSaver(str(tmp_path), entries)
  saver.restore(saver.latest())
  assert int(step) == 7
  assert int(optimizer.iterations) == 7  # Recovered from beta2_power.
  reader = tf.train.load_checkpoint(str(tmp_path))
  np.testing.assert_array_equal(net.kernel.numpy(), reader.get_tensor("net/kernel"))


@pytest.mark.parametrize("keep", [0, None])
def test_keep_checkpoint_max_0_or_none_keeps_every_checkpoint_as_estimator_did(tmp_path, keep):
  _, _, step, entries = setup_state()
  saver = CheckpointSaver(str(tmp_path), entries, keep_checkpoint_max=keep)
  for n in (1, 2, 3, 4, 5, 6, 7):
    step.assign(n)
    saver.save(n)
  assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".index")) == [
    f"model.ckpt-{n}.index" for n in (1, 2, 3, 4, 5, 6, 7)
  ]
  state = tf.train.get_checkpoint_state(str(tmp_path))
  listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
  assert listed == [f"model.ckpt-{n}" for n in range(1, 8)]


def test_keep_checkpoint_max_and_relative_state_file(tmp_path):
  _, _, step, entries = setup_state()
  saver = CheckpointSaver(str(tmp_path), entries, keep_checkpoint_max=2)
  for n in (1, 2, 3):
    step.assign(n)
    saver.save(n)
  state_file = (tmp_path / "checkpoint").read_text()
  assert state_file.splitlines() == [
    'model_checkpoint_path: "model.ckpt-3"',
    'all_model_checkpoint_paths: "model.ckpt-2"',
    'all_model_checkpoint_paths: "model.ckpt-3"',
  ]
  assert sorted(p for p in os.listdir(tmp_path) if "ckpt" in p) == [
    "model.ckpt-2.data-00000-of-00001", "model.ckpt-2.index",
    "model.ckpt-3.data-00000-of-00001", "model.ckpt-3.index",
  ]  # fmt: skip
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-3")


def test_restore_names_missing_keys_and_shape_mismatch(tmp_path):
  _, _, _, entries = setup_state()
  CheckpointSaver(str(tmp_path / "a"), {"global_step": entries["global_step"]}).save(1)
  with pytest.raises(UserError, match="lacks .*net/kernel.*use a fresh model_dir"):
    CheckpointSaver(str(tmp_path / "a"), entries).restore(str(tmp_path / "a" / "model.ckpt-1"))
  other = tf.Variable(tf.zeros((4,)))
  CheckpointSaver(str(tmp_path / "b"), {"net/kernel": variable_entry(other)}).save(1)
  with pytest.raises(UserError, match=r"net/kernel has shape \[4\], the model \[2, 3\]"):
    CheckpointSaver(str(tmp_path / "b"), entries).restore(
      str(tmp_path / "b" / "model.ckpt-1"), keys=["net/kernel"]
    )


def test_no_temporary_files_left(tmp_path):
  _, _, _, entries = setup_state()
  CheckpointSaver(str(tmp_path), entries).save(5)
  assert sorted(os.listdir(tmp_path)) == [
    "checkpoint",
    "model.ckpt-5.data-00000-of-00001",
    "model.ckpt-5.index",
  ]


def test_non_finite_values_are_never_written(tmp_path):
  net, _, _, entries = setup_state()
  saver = CheckpointSaver(str(tmp_path), entries)
  saver.save(1)
  net.kernel.assign(tf.fill((2, 3), float("nan")))
  with pytest.raises(RuntimeError, match="refusing to write checkpoint 2: net/kernel holds NaN or Inf"):
    saver.save(2)
  assert saver.latest().endswith("model.ckpt-1")
  assert not [name for name in os.listdir(tmp_path) if "ckpt-2" in name]


@pytest.mark.parametrize(
  "text, latest, listed, problem",
  [
    (b'model_checkpoint_path: "model.ckpt-2"\nall_model_checkpoint_paths: "model.ckpt-1"\n'
     b'all_model_checkpoint_paths: "model.ckpt-2"\nall_model_checkpoint_timestamps: 1.5e9\n'
     b"last_preserved_timestamp: 1700000000.25\n", "model.ckpt-2", ("model.ckpt-1", "model.ckpt-2"), None),
    (b'model_checkpoint_path: "model.ckpt-7"\n', "model.ckpt-7", ("model.ckpt-7",), None),
    (b"", None, (), "empty"),
    (b"hello world\n", None, (), "line 1 is not CheckpointState text"),
    (b'all_model_checkpoint_paths: "model.ckpt-1"\n', None, (), "names no model_checkpoint_path"),
    (b"\xa4\x00\xff", None, (), "not text (random bytes?)"),
  ],
)  # fmt: skip
def test_read_state_never_raises(tmp_path, text, latest, listed, problem):
  (tmp_path / "checkpoint").write_bytes(text)
  state = checkpoint_files.read_state(str(tmp_path))
  assert (state.latest, state.listed, state.problem) == (latest, listed, problem)


def save_steps(saver, step_variable, steps):
  for n in steps:
    step_variable.assign(n)
    saver.save(n)


def test_pruning_after_a_fallback_keeps_newer_damaged_and_restored_checkpoints(tmp_path):
  _, _, step, entries = setup_state()
  save_steps(CheckpointSaver(str(tmp_path), entries, keep_checkpoint_max=3), step, (10, 20, 30))
  os.remove(tmp_path / "model.ckpt-30.index")
  saver = CheckpointSaver(str(tmp_path), entries, keep_checkpoint_max=2)
  assert saver.restore_newest() == str(tmp_path / "model.ckpt-20")
  assert int(step) == 20
  save_steps(saver, step, (25,))
  names = sorted(p for p in os.listdir(tmp_path) if "ckpt" in p)
  assert names == [
    "model.ckpt-20.data-00000-of-00001", "model.ckpt-20.index",  # Restored from: kept.
    "model.ckpt-25.data-00000-of-00001", "model.ckpt-25.index",
    "model.ckpt-30.data-00000-of-00001",  # Newer and damaged: never pruned.
  ]  # fmt: skip
  assert checkpoint_files.read_state(str(tmp_path)).listed == ("model.ckpt-20", "model.ckpt-25")


def test_state_file_never_moves_to_an_older_step(tmp_path):
  _, _, step, entries = setup_state()
  first = CheckpointSaver(str(tmp_path), entries)
  save_steps(first, step, (10,))
  second = CheckpointSaver(str(tmp_path), entries)
  second.restore_newest()
  save_steps(first, step, (30,))  # Another writer in the same model_dir moves on.
  step.assign(20)
  with pytest.raises(UserError, match="names model.ckpt-30, newer than this run's step 20: another trainer"):
    second.save(20)
  assert checkpoint_files.read_state(str(tmp_path)).latest == "model.ckpt-30"


def test_temp_names_are_unique_per_save(tmp_path, monkeypatch):
  _, _, step, entries = setup_state()
  seen = []
  merge = tf.raw_ops.MergeV2Checkpoints

  def spy(**kwargs):
    seen.append(kwargs["checkpoint_prefixes"][0])
    return merge(**kwargs)

  monkeypatch.setattr(tf.raw_ops, "MergeV2Checkpoints", spy)
  saver = CheckpointSaver(str(tmp_path), entries)
  save_steps(saver, step, (1,))
  os.remove(tmp_path / "checkpoint")
  save_steps(CheckpointSaver(str(tmp_path), entries), step, (1,))
  assert len(set(seen)) == 2 and all(f"_{os.getpid()}_" in p for p in seen)


def test_candidates_union_disk_and_state_file_newest_first(tmp_path):
  for name in ("model.ckpt-5.index", "model.ckpt-5.data-00000-of-00001", "model.ckpt-12.data-00000-of-00001"):
    (tmp_path / name).write_bytes(b"")
  # An Estimator's absolute path from where the model_dir used to be, and one only the state file knows.
  (tmp_path / "checkpoint").write_text(
    'model_checkpoint_path: "/old/place/model.ckpt-5"\nall_model_checkpoint_paths: "model.ckpt-9"\n'
  )
  assert checkpoint_files.candidates(str(tmp_path)) == [str(tmp_path / f"model.ckpt-{s}") for s in (12, 9, 5)]
  assert checkpoint_files.missing_files(str(tmp_path / "model.ckpt-12")) == "no model.ckpt-12.index"
  assert "no files" in checkpoint_files.missing_files(str(tmp_path / "model.ckpt-9"))
  assert checkpoint_files.missing_files(str(tmp_path / "model.ckpt-5")) is None

"""End-to-end: the toy variant trained in-process into a temp model_dir."""

import os

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine import NonFiniteLossError, train_and_evaluate
from deephub.engine.loop import check_schedule
from deephub.errors import UserError
from tests.conftest import read_scalars

EXPECTED_KEYS = {
    "global_step", "beta1_power", "beta2_power",
    *(f"toy/{v}{s}" for v in ("w1", "b1", "w2", "b2") for s in ("", "/Adam", "/Adam_1")),
}  # fmt: skip


def test_trains_toy_into_estimator_layout(toy_config):
  results = train_and_evaluate(toy_config)
  model_dir = toy_config.model.model_dir

  assert tf.train.latest_checkpoint(model_dir) == os.path.join(model_dir, "model.ckpt-10")
  reader = tf.train.load_checkpoint(model_dir)
  assert set(reader.get_variable_to_shape_map()) == EXPECTED_KEYS
  # The input position lives in a side bundle: Estimator-era readers cannot load variants.
  side = tf.train.load_checkpoint(os.path.join(model_dir, "model.ckpt-10.input_state"))
  assert set(side.get_variable_to_shape_map()) == {"deephub/train_input_state"}
  assert reader.get_tensor("global_step") == 10
  assert reader.get_tensor("global_step").dtype == np.int64
  assert reader.get_variable_to_shape_map()["toy/w2"] == [50, 100]
  # TF1 Adam holds beta^(t+1) after t updates.
  np.testing.assert_allclose(reader.get_tensor("beta1_power"), 0.9**11, rtol=1e-5)
  np.testing.assert_allclose(reader.get_tensor("beta2_power"), 0.999**11, rtol=1e-5)
  assert not np.allclose(reader.get_tensor("toy/w1"), 0.01)  # It trained.

  train = read_scalars(model_dir)
  assert {"loss", "global_step/sec", "learning_rate", "training_accuracy"} <= set(train)
  assert sorted(train["loss"]) == list(range(1, 11))  # save_summary_steps = 1.
  assert train["loss"][1] == pytest.approx(np.log(100), rel=1e-3)  # Uniform logits at the start.
  assert train["loss"][10] < train["loss"][1]
  assert train["learning_rate"][5] == pytest.approx(0.001)

  evaluated = read_scalars(os.path.join(model_dir, "eval"))
  assert set(evaluated) == {"loss", "accuracy"}
  assert list(evaluated["loss"]) == [10]  # At the checkpoint's global step.
  assert evaluated["loss"][10] == pytest.approx(results["loss"])
  for name in ("config.json", "experiment_params.yaml"):
    assert os.path.isfile(os.path.join(model_dir, name))


def test_resume_continues_from_last_step(toy_config):
  toy_config.train.epochs = 4
  train_and_evaluate(toy_config)
  model_dir = toy_config.model.model_dir
  first = tf.train.load_checkpoint(model_dir)
  w1_after_4 = first.get_tensor("toy/w1")

  toy_config.train.epochs = 7
  train_and_evaluate(toy_config)
  reader = tf.train.load_checkpoint(model_dir)
  assert reader.get_tensor("global_step") == 7
  np.testing.assert_allclose(reader.get_tensor("beta2_power"), 0.999**8, rtol=1e-5)
  loss = read_scalars(model_dir)["loss"]
  assert sorted(loss) == list(range(1, 8))  # Steps 5..7 continue, none repeated.

  # Same result as 7 uninterrupted steps: weights and Adam state were restored.
  toy_config.model.model_dir = model_dir + "_straight"
  train_and_evaluate(toy_config)
  straight = tf.train.load_checkpoint(toy_config.model.model_dir)
  for key in ("toy/w1", "toy/w2/Adam", "toy/b2/Adam_1"):
    np.testing.assert_allclose(reader.get_tensor(key), straight.get_tensor(key), rtol=1e-5, atol=1e-7)
  assert not np.allclose(w1_after_4, reader.get_tensor("toy/w1"))


def test_already_finished_run_trains_nothing(toy_config):
  toy_config.train.epochs = 2
  train_and_evaluate(toy_config)
  before = tf.train.load_checkpoint(toy_config.model.model_dir).get_tensor("toy/w1")
  train_and_evaluate(toy_config)
  after = tf.train.load_checkpoint(toy_config.model.model_dir).get_tensor("toy/w1")
  np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize(
  "steps_per_loop, save_steps, expected", [(1, 3, [6, 9, 10]), (4, 3, [4, 8, 10]), (100, 3, [0, 10])]
)
def test_checkpoints_on_crossing_multiples(toy_config, steps_per_loop, save_steps, expected):
  toy_config.train.steps_per_loop = steps_per_loop
  toy_config.train.save_checkpoint_steps = save_steps
  toy_config.train.keep_checkpoint_max = 3
  train_and_evaluate(toy_config)
  state = tf.train.get_checkpoint_state(toy_config.model.model_dir)
  assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
    f"model.ckpt-{s}" for s in expected
  ]
  assert not os.path.isabs(
    open(os.path.join(toy_config.model.model_dir, "checkpoint")).readline().split('"')[1]
  )
  indexes = sorted(
    f for f in os.listdir(toy_config.model.model_dir) if f.endswith(".index") and "input" not in f
  )
  assert indexes == sorted(f"model.ckpt-{s}.index" for s in expected)  # Older ones deleted.


def test_validation_steps_evaluates_at_crossings(toy_config):
  toy_config.train.steps_per_loop = 2
  toy_config.train.validation_steps = 4
  train_and_evaluate(toy_config)
  model_dir = toy_config.model.model_dir
  assert sorted(read_scalars(os.path.join(model_dir, "eval"))["accuracy"]) == [4, 8, 10]
  # Each eval step has a checkpoint.
  state = tf.train.get_checkpoint_state(model_dir)
  assert {os.path.basename(p) for p in state.all_model_checkpoint_paths} >= {"model.ckpt-4", "model.ckpt-8"}


@pytest.mark.parametrize("steps, secs", [(None, None), (10, 60)])
def test_exactly_one_checkpoint_period(toy_config, steps, secs):
  toy_config.train.save_checkpoint_steps = steps
  toy_config.train.save_checkpoint_secs = secs
  with pytest.raises(UserError, match="exactly one of train.save_checkpoint_steps"):
    train_and_evaluate(toy_config)
  assert not os.path.exists(toy_config.model.model_dir)


def test_non_finite_loss_stops_without_checkpoint(toy_config):
  toy_config.model.learning_rate = float("nan")
  toy_config.train.steps_per_loop = 5
  with pytest.raises(NonFiniteLossError, match=r"step 2 \(steps 1\.\.5\)"):
    train_and_evaluate(toy_config)
  # Only the initial checkpoint exists, and it is finite.
  latest = tf.train.latest_checkpoint(toy_config.model.model_dir)
  assert latest.endswith("model.ckpt-0")
  reader = tf.train.load_checkpoint(latest)
  for name, dtype in reader.get_variable_to_dtype_map().items():
    if dtype.is_floating:
      assert np.all(np.isfinite(reader.get_tensor(name))), name


def write_numbers(path, values):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i, value in enumerate(values):
      feature = {
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[value])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
      }
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_nan_rollback_restores_last_good_checkpoint_and_continues(toy_config, tmp_path):
  values = [float(i) for i in range(10)]
  values[5] = float("nan")  # Step 6 (batch size 1, no shuffle) sees a NaN input.
  write_numbers(tmp_path / "data.tfrecord", values)
  feeder = toy_config.train.train_feeder
  feeder.file_patterns = [str(tmp_path / "data.tfrecord")]
  feeder.batch_size, feeder.shuffle, feeder.auto_generate_meta = 1, False, True
  feeder.features_map = {"x": {"type": "FixedLenFeature", "shape": [], "dtype": "float32"}}
  feeder.labels_map = {"label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}}
  toy_config.train.eval_feeder.file_patterns = []
  toy_config.train.epochs, toy_config.train.steps_per_loop = 1, 1
  toy_config.train.save_checkpoint_steps = 2
  toy_config.train.nan_policy = "rollback"
  train_and_evaluate(toy_config)
  reader = tf.train.load_checkpoint(toy_config.model.model_dir)
  assert reader.get_tensor("global_step") == 10
  assert np.all(np.isfinite(reader.get_tensor("toy/w1")))
  assert 6 not in read_scalars(toy_config.model.model_dir)["loss"] or np.isfinite(
    read_scalars(toy_config.model.model_dir)["loss"][6]
  )

  toy_config.model.model_dir += "_limit"
  toy_config.model.learning_rate = float("nan")  # Every step fails: rollbacks run out.
  with pytest.raises(NonFiniteLossError, match="train.nan_policy"):
    train_and_evaluate(toy_config)


def test_xla_off_gives_same_result(toy_config):
  toy_config.train.epochs = 3
  train_and_evaluate(toy_config)
  with_xla = tf.train.load_checkpoint(toy_config.model.model_dir).get_tensor("toy/w2")
  toy_config.runtime.xla = False
  toy_config.model.model_dir += "_noxla"
  train_and_evaluate(toy_config)
  without = tf.train.load_checkpoint(toy_config.model.model_dir).get_tensor("toy/w2")
  np.testing.assert_allclose(with_xla, without, rtol=1e-4, atol=1e-6)


def test_summaries_every_n_steps_are_written_from_the_steps_that_computed_them(toy_config):
  toy_config.train.save_summary_steps = 3
  toy_config.train.steps_per_loop = 4  # Due steps 3, 6, 9 fall at different places in each loop.
  train_and_evaluate(toy_config)
  train = read_scalars(toy_config.model.model_dir)
  for name in ("loss", "training_accuracy", "learning_rate"):
    assert sorted(train[name]) == [3, 6, 9], name
    assert all(np.isfinite(value) for value in train[name].values()), name
  assert train["learning_rate"][6] == pytest.approx(0.001)
  assert 0.0 <= train["training_accuracy"][9] <= 1.0


@pytest.mark.parametrize("key", ["steps_per_loop", "save_summary_steps"])
def test_periods_the_loop_needs_refuse_none(toy_config, key):
  toy_config.train[key] = None
  with pytest.raises(UserError, match=rf"^train\.{key} is None; set it to 1 or more$"):
    check_schedule(toy_config.train)


def test_optional_periods_accept_none(toy_config):
  toy_config.train.log_step_count_steps = None
  check_schedule(toy_config.train)

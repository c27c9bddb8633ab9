"""End-to-end on a real S3 API server: data, model_dir, resume and the CLI's exit codes.

Runs in the io environment (tensorflow 2.17 + tensorflow-io); see tests/io/conftest.py.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine import train_and_evaluate
from deephub.errors import UserError
from deephub.resources import toy_data_dir
from tests.cli_run import child_env, run_deep
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.io


@pytest.fixture
def toy_in_bucket(s3_bucket, upload):
  """The toy TFRecord shards copied to `<bucket>/data/`; returns the bucket URL."""
  for split in ("train", "validation"):
    upload(
      os.path.join(toy_data_dir(), f"{split}-00000-of-00001"), f"{s3_bucket}/data/{split}-00000-of-00001"
    )
  return s3_bucket


def _point_at(config, bucket):
  config.model.model_dir = f"{bucket}/runs/toy"
  config.train.train_feeder.file_patterns = [f"{bucket}/data/train-*"]
  config.train.eval_feeder.file_patterns = [f"{bucket}/data/validation-*"]
  return config


def _events(logdir):
  """{tag: {step: value}} from the event files in an s3:// (or local) folder."""
  scalars = {}
  for path in sorted(tf.io.gfile.glob(f"{logdir}/events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        scalars.setdefault(value.tag, {})[event.step] = value.simple_value
  return scalars


def test_trains_and_resumes_with_data_and_model_dir_in_s3(toy_config, toy_in_bucket, tmp_path):
  config = _point_at(toy_config, toy_in_bucket)
  config.train.epochs = 4
  config.train.save_checkpoint_steps = 2
  config.train.steps_per_loop = 2
  config.train.keep_checkpoint_max = 2
  train_and_evaluate(config)
  model_dir = config.model.model_dir
  assert tf.train.latest_checkpoint(model_dir) == f"{model_dir}/model.ckpt-4"

  config.train.epochs = 7
  results = train_and_evaluate(config)  # Resumes from s3://.../model.ckpt-4.
  reader = tf.train.load_checkpoint(model_dir)
  assert reader.get_tensor("global_step") == 7
  np.testing.assert_allclose(reader.get_tensor("beta2_power"), 0.999**8, rtol=1e-5)
  state = tf.train.get_checkpoint_state(model_dir)
  assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["model.ckpt-6", "model.ckpt-7"]
  names = set(tf.io.gfile.listdir(model_dir))
  assert {"checkpoint", "config.json", "experiment_params.yaml", "model.ckpt-7.index"} <= names
  assert not any(n.startswith("model.ckpt-4") for n in names)  # Older checkpoints deleted in the bucket.
  assert not any(n.endswith("_temp") or n.endswith("_temp/") for n in names)  # Staging folders removed.
  assert sorted(_events(model_dir)["loss"]) == list(range(1, 8))  # Steps 5..7 continued, none repeated.
  assert _events(f"{model_dir}/eval")["loss"][7] == pytest.approx(results["loss"])

  # Same weights as 7 uninterrupted steps on local files: S3 changes nothing.
  local = toy_config
  local.model.model_dir = str(tmp_path / "local")
  local.train.train_feeder.file_patterns = [os.path.join(toy_data_dir(), "train-*")]
  local.train.eval_feeder.file_patterns = [os.path.join(toy_data_dir(), "validation-*")]
  train_and_evaluate(local)
  straight = tf.train.load_checkpoint(local.model.model_dir)
  for key in ("toy/w1", "toy/w2/Adam", "toy/b2/Adam_1"):
    np.testing.assert_allclose(reader.get_tensor(key), straight.get_tensor(key), rtol=1e-5, atol=1e-7)


def test_missing_s3_data_is_a_user_error(toy_config, s3_bucket):
  config = _point_at(toy_config, s3_bucket)
  with pytest.raises(UserError, match=r"file pattern 's3://deephub-\w+/data/train-\*' matches no file"):
    train_and_evaluate(config)


def test_saved_model_round_trips_through_s3(toy_config, toy_in_bucket):
  # Export itself lands with another branch; this checks that the SavedModel
  # writer's staging and renames work on this filesystem, with the trained model.
  config = _point_at(toy_config, toy_in_bucket)
  config.train.epochs = 1
  train_and_evaluate(config)
  weights = tf.train.load_checkpoint(config.model.model_dir).get_tensor("toy/w2")
  module = tf.Module()
  module.w2 = tf.Variable(weights)
  module.serve = tf.function(lambda x: tf.matmul(x, module.w2), input_signature=[tf.TensorSpec([None, 50])])
  export_dir = f"{toy_in_bucket}/export/toy/1"
  tf.saved_model.save(module, export_dir)
  assert tf.io.gfile.exists(f"{export_dir}/saved_model.pb")
  loaded = tf.saved_model.load(export_dir)
  np.testing.assert_allclose(loaded.serve(tf.ones([1, 50])).numpy(), np.ones([1, 50]) @ weights, rtol=1e-6)


def _cli_args(bucket, *extra):
  return (
    "--variant=toy",
    f"--config.model.model_dir={bucket}/runs/cli",
    f"--config.train.train_feeder.file_patterns={bucket}/data/train-*",
    f"--config.train.eval_feeder.file_patterns={bucket}/data/validation-*",
    "--config.train.epochs=2",
    *extra,
  )


@pytest.mark.parametrize(
  "extra, code, stderr_has",
  [
    ((), 0, "deephub: finished toy in s3://"),
    # A UserError after S3 was used: one line, exit 2.
    (("--config.train.eval_feeder.file_patterns={bucket}/nothing/v-*",), 2, "matches no file"),
    # A NaN loss is the user's to fix: one line, exit 2.
    (("--config.model.learning_rate=nan",), 2, "deephub: error: loss is nan"),
    # A bad seed is refused before anything is written: one line, exit 2.
    (("--config.runtime.seed=-1",), 2, "deephub: error: runtime.seed is -1"),
  ],
)
def test_cli_exits_with_its_real_code_after_s3_use(toy_in_bucket, extra, code, stderr_has):
  result = run_cli(*_cli_args(toy_in_bucket, *(arg.format(bucket=toy_in_bucket) for arg in extra)))
  assert result.returncode == code, result.stderr[-3000:]
  assert stderr_has in result.stderr
  assert "pure virtual method called" not in result.stderr
  if code == 0:
    assert tf.train.latest_checkpoint(f"{toy_in_bucket}/runs/cli").endswith("model.ckpt-2")


def test_cli_crash_after_s3_use_keeps_its_traceback_and_exit_1(toy_in_bucket):
  # No config value reaches a bug any more, so the child plants one: the real
  # `python -m deephub.train` entry point, with the work after the last loop
  # (the final checkpoint to S3 comes first) raising as a bug would.
  script = (
    "import sys\n"
    "from deephub import train\n"
    "from deephub.engine import schedule\n"
    "def finish(self, outcome):\n"
    "  self.save.save(int(self.global_step.numpy()))\n"
    "  raise RuntimeError('planted bug after S3 use')\n"
    "schedule.Schedule.finish = finish\n"
    "sys.argv = ['deephub.train', *sys.argv[1:]]\n"
    "train.run()\n"
  )
  result = subprocess.run(
    [sys.executable, "-c", script, *_cli_args(toy_in_bucket)],
    cwd=REPO,
    env=child_env(),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" in result.stderr and "RuntimeError: planted bug after S3 use" in result.stderr
  assert "deephub: error:" not in result.stderr
  assert "pure virtual method called" not in result.stderr
  assert tf.train.latest_checkpoint(f"{toy_in_bucket}/runs/cli").endswith("model.ckpt-2")  # S3 was written.


@pytest.mark.parametrize("code", [0, 3])
def test_run_and_exit_keeps_code_after_s3_client_use(s3_bucket, code):
  # Without clean_exit this script dies with SIGABRT (134) in the AWS SDK's
  # teardown on tensorflow-io 0.37.1; with it, the code is the script's.
  script = (
    "import sys, tensorflow as tf\n"
    "from deephub import clean_exit\n"
    "from deephub.io import remote\n"
    f"remote.ensure_filesystem('{s3_bucket}/x', where='test')\n"
    f"tf.io.gfile.GFile('{s3_bucket}/x', 'w').write('1')\n"
    "print('wrote', flush=False)\n"
    f"clean_exit.run_and_exit(lambda: sys.exit({code}))\n"
  )
  result = subprocess.run(
    [sys.executable, "-c", script],
    env={**os.environ, "PYTHONPATH": REPO},
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == code, result.stderr[-2000:]
  assert result.stdout == "wrote\n"  # Flushed before leaving.


def test_metadata_generation_and_validation_on_s3(toy_in_bucket):
  generated = run_deep("utils", "generate-metadata", f"{toy_in_bucket}/data/*")
  assert generated.returncode == 0, generated.stderr[-3000:]
  with tf.io.gfile.GFile(f"{toy_in_bucket}/data/_tfrecord_metadata.json") as f:
    entries = json.load(f)["files"]
  assert {name: entry["total_records"] for name, entry in entries.items()} == {
    "train-00000-of-00001": 10,
    "validation-00000-of-00001": 10,
  }
  validated = run_deep("utils", "validate", f"{toy_in_bucket}/data/*", "--deep-check")
  assert validated.returncode == 0, validated.stderr[-3000:]
  total = run_deep("utils", "total-examples", f"{toy_in_bucket}/data/train-*")
  assert total.returncode == 0 and "10" in total.stdout + total.stderr


def test_warm_start_from_s3_and_exporters_into_s3(toy_config, toy_in_bucket, tmp_path):
  source = _point_at(toy_config, toy_in_bucket)
  source.train.epochs = 3
  source.train.exporters.final.name = "final"
  train_and_evaluate(source)
  source_dir = source.model.model_dir
  exports = tf.io.gfile.listdir(f"{source_dir}/export/final")
  assert len(exports) == 1
  assert tf.io.gfile.exists(f"{source_dir}/export/final/{exports[0].rstrip('/')}/saved_model.pb")

  warm = toy_config
  warm.model.model_dir = str(tmp_path / "warm")
  warm.train.epochs = 1
  warm.train.exporters.final.name = ""
  warm.train.warm_start_check_point = source_dir
  warm.train.warm_start_variables_regex = "toy/w.*"
  warm.train.checkpoint_input_state = False
  train_and_evaluate(warm)
  initial = tf.train.load_checkpoint(os.path.join(warm.model.model_dir, "model.ckpt-0"))
  trained = tf.train.load_checkpoint(source_dir)
  np.testing.assert_array_equal(initial.get_tensor("toy/w1"), trained.get_tensor("toy/w1"))
  np.testing.assert_array_equal(initial.get_tensor("toy/b1"), np.zeros(50, np.float32))  # Not matched.

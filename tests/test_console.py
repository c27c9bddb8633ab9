"""The quiet console: TensorFlow's no-GPU lines hidden on the real entry points, back with -l DEBUG / -v 1."""

import os

import pytest

from deephub import console
from tests.cli_run import run_deep
from tests.conftest import run_cli

# What a CPU-only machine printed before deephub's first line (issue 20), and
# the deprecation notice the event-file reader used to trigger.
NOISE_FRAGMENTS = (
  "InitializeLog",
  "Could not find cuda drivers",
  "cuInit",
  "Unable to register",  # TensorFlow 2.17's cuDNN/cuFFT/cuBLAS factory lines.
  "is deprecated",
  "tf_record_iterator",
)


@pytest.mark.parametrize(
  "line, noise",
  [
    (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR", True),
    (b"I0000 00:00:1795861558.560660    8877 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
     b"GPU will not be used.", True),
    (b"E0000 00:00:1795861563.333163    8877 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
     b"Failed call to cuInit: UNKNOWN ERROR (303)", True),
    (b"E0000 00:00:1.0 1 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register factory "
     b"for plugin cuDNN when one has already been registered", True),
    (b"E0000 00:00:1.0 1 cuda_blas.cc:1418] Unable to register cuBLAS factory: ...", True),
    (b"E0000 00:00:1.0 1 op_kernel.cc:1817] OP_REQUIRES failed at save_restore_v2_ops.cc:159", False),
    (b"W0000 00:00:1.0 1 cuda_platform.cc:99] something else about CUDA", False),
    (b"WARNING: All log messages before", False),
    (b"Traceback (most recent call last):", False),
  ],
)  # fmt: skip
def test_noise_pattern(line, noise):
  assert bool(console.NOISE.search(line)) is noise


def test_filtered_stderr_drops_only_the_noise_written_to_fd_2(capfd):
  with console.filtered_stderr():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"a real error\n")
    os.write(
      2, b"I0000 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
    )
    os.write(2, b"unterminated last line")
  os.write(2, b"\nafter the block\n")
  assert capfd.readouterr().err == "a real error\nunterminated last line\nafter the block\n"


@pytest.mark.parametrize(
  "level, verbose", [("0", True), ("1", False), ("2", False), ("3", False), (None, True)]
)
def test_verbose_only_when_tensorflow_logs_everything(monkeypatch, level, verbose):
  if level is None:
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
  else:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
  assert console.verbose() is verbose


# Left out of the children's environment, as the user's has no TF_CPP_MIN_LOG_LEVEL of ours.
NOT_THE_USERS = ("TF_CPP_MIN_LOG_LEVEL",)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """`deep trainer train toy` in a fresh folder, off a terminal, as CI or `| tee` would run it."""
  cwd = tmp_path_factory.mktemp("quiet")
  return cwd, run_deep("trainer", "train", "toy", cwd=cwd, drop_env=NOT_THE_USERS)


def test_deep_trainer_train_is_quiet_and_says_what_next(trained):
  cwd, done = trained
  assert done.returncode == 0, done.stderr[-3000:]
  for fragment in NOISE_FRAGMENTS:
    assert fragment not in done.stderr, done.stderr
  model_dir = str(cwd / "runs" / "toy")
  lines = done.stderr.splitlines()
  assert lines[0] == f"deephub: training toy into {model_dir}"
  assert lines[-3].startswith(f"deephub: finished toy in {model_dir}: loss = ")
  assert lines[-2:] == [
    f"deephub: model_dir {model_dir}",
    f"deephub: see the curves with: tensorboard --logdir {model_dir}",
  ]


def test_python_m_deephub_train_is_quiet_off_a_terminal(trained):
  """The other entry point, and the periodic log lines that stay when stderr is not a terminal."""
  cwd, _ = trained
  done = run_cli("--variant=toy", "--config.train.epochs=12", cwd=str(cwd), env={"TF_CPP_MIN_LOG_LEVEL": "2"})
  assert done.returncode == 0, done.stderr[-3000:]
  for fragment in NOISE_FRAGMENTS:
    assert fragment not in done.stderr, done.stderr
  assert "] step 12/12  loss " in done.stderr and "] Eval at step 12: loss = " in done.stderr


def test_debug_and_v1_show_tensorflow_lines_again(trained):
  cwd, _ = trained
  debug = run_deep("-l", "DEBUG", "trainer", "evaluate", "toy", cwd=cwd, drop_env=NOT_THE_USERS)
  assert debug.returncode == 0, debug.stderr[-3000:]
  assert "InitializeLog" in debug.stderr
  v1 = run_deep(
    "--variant=toy", "--mode=evaluate", "-v", "1", module="deephub.train", cwd=cwd, drop_env=NOT_THE_USERS
  )
  assert v1.returncode == 0, v1.stderr[-3000:]
  assert "InitializeLog" in v1.stderr


@pytest.mark.io
def test_quiet_on_tensorflow_2_17(tmp_path):
  """The io environment's TensorFlow 2.17 prints other lines (cuDNN/cuFFT/cuBLAS factories); hidden too."""
  done = run_deep("trainer", "train", "toy", "-p", "train.epochs", "2", cwd=tmp_path, drop_env=NOT_THE_USERS)
  assert done.returncode == 0, done.stderr[-3000:]
  for fragment in NOISE_FRAGMENTS:
    assert fragment not in done.stderr, done.stderr
  assert done.stderr.startswith("deephub: training toy into ")

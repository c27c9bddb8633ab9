"""Which failures are the destination's (one line for the user) and which stay bugs."""

import errno

import pytest
import tensorflow as tf

from deephub import write_errors


def test_tensorflow_and_python_errors_under_a_file_name_the_path(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("x")
  with pytest.raises(tf.errors.OpError) as tf_error:
    tf.io.gfile.makedirs(str(blocker / "model"))
  with pytest.raises(OSError) as os_error:
    open(blocker / "config.json", "w")  # noqa: SIM115 - it must fail to open.
  for error in (tf_error.value, os_error.value):
    assert write_errors.cause(error)[0] == "it or a folder above it is a file"
  assert write_errors.failed_path(tf_error.value) == str(blocker)
  assert write_errors.failed_path(os_error.value) == str(blocker / "config.json")


@pytest.mark.parametrize(
  "error, reason",
  [
    (tf.errors.ResourceExhaustedError(None, None, "/m/x.tempstate1; No space left on device"), "no space"),
    (tf.errors.PermissionDeniedError(None, None, "/m/config.json; Read-only file system"), "read-only"),
    (OSError(errno.EDQUOT, "Disk quota exceeded", "/m/f"), "quota"),
    # Not the destination's: these stay errors with a traceback.
    (tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[1000000]"), None),
    (OSError(errno.ENOENT, "No such file or directory", "/m/f"), None),
    (ValueError("Permission denied"), None),
  ],
)
def test_cause(error, reason):
  found = write_errors.cause(error)
  if reason is None:
    assert found is None
  else:
    assert reason in found[0]


def test_explain_names_the_path_and_the_last_checkpoint():
  error = tf.errors.ResourceExhaustedError(
    None, None, "{{function_node __wrapped__FlushSummaryWriter}} /m/events.out.tfevents.1; No space left on "
    "device\n\tFailed to flush 1 events"
  )  # fmt: skip
  assert str(write_errors.explain(error, model_dir="/m", step=20)) == (
    "cannot write /m/events.out.tfevents.1: no space left on the device; the last good checkpoint is step 20 "
    "(/m/model.ckpt-20); free space there, then rerun the same command"
  )
  assert write_errors.explain(ValueError("x"), model_dir="/m") is None

"""A full disk, a read-only model_dir and a model_dir that is a file, through the real CLI.

The full and read-only cases are real: the model_dir is a small tmpfs mounted
in a private mount namespace (`unshare --mount`, with `--user
--map-root-user` when not root), so the kernel itself answers ENOSPC or
EROFS. Each case ends with exit code 2 and one error line naming the path
and the last good checkpoint, and leaves the model_dir resumable.
"""

import os
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cli
from tests.hostile.test_signals import assert_no_traceback, ours

# One toy checkpoint (weights, Adam slots, input state) takes about 72 KiB:
# 120 KiB holds the config, the event files and model.ckpt-0, not a second one.
ROOM_FOR_ONE_CHECKPOINT = "120k"


def _in_mount_namespace(script: str) -> subprocess.CompletedProcess:
  """Runs a bash script as root of a private mount namespace (so it may mount a tmpfs)."""
  user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]  # Root needs no user namespace.
  unshare = ["unshare", *user, "--mount"]
  return subprocess.run(
    [*unshare, "bash", "-euc", script],
    cwd=REPO,
    env={**os.environ, "PYTHONPATH": REPO},
    capture_output=True,
    text=True,
    timeout=600,
  )


def _train(model_dir: str, *flags: str, name: str = "model") -> str:
  """A bash line: trains the toy into model_dir; stderr and exit code go to `<mount>.<name>.stderr|rc`.

  Beside the mount, not in it: a full disk must not swallow them.
  """
  args = " ".join(shlex.quote(a) for a in ["--variant=toy", f"--config.model.model_dir={model_dir}", *flags])
  out = shlex.quote(f"{os.path.dirname(model_dir)}.{name}")
  train = f"{shlex.quote(sys.executable)} -m deephub.train {args}"
  return f"{{ {train} 2> {out}.stderr; echo $? > {out}.rc; }} || true"  # || : bash -e goes on.


def _result(base: str, name: str) -> tuple[int, str]:
  with open(f"{base}.{name}.rc") as f, open(f"{base}.{name}.stderr") as g:
    return int(f.read()), g.read()


def test_disk_full_during_a_checkpoint_names_it_cleans_up_and_the_rerun_resumes(tmp_path):
  mount = str(tmp_path / "disk")
  model_dir = f"{mount}/model"
  result = _in_mount_namespace(
    f"mkdir -p {mount}; mount -t tmpfs -o size={ROOM_FOR_ONE_CHECKPOINT} tmpfs {mount}\n"
    + _train(model_dir, "--config.train.epochs=3")
    + f"\nls -a {model_dir} > {tmp_path}/after_full; cat {model_dir}/checkpoint > {tmp_path}/state\n"
    # Room again: the same command continues from model.ckpt-0.
    + f"mount -o remount,size=1m {mount}\n"
    + _train(model_dir, "--config.train.epochs=3", name="rerun")
    + f"\nls -a {model_dir} > {tmp_path}/after_rerun"
  )
  assert result.returncode == 0, result.stderr[-3000:]
  code, stderr = _result(mount, "model")
  assert code == 2, stderr[-3000:]
  assert_no_traceback(stderr)
  assert ours(stderr) == [
    f"deephub: training toy into {model_dir}",
    f"deephub: error: cannot write {model_dir}/model.ckpt-3: no space left on the device; the last good "
    f"checkpoint is step 0 ({model_dir}/model.ckpt-0); free space there, then rerun the same command",
  ]
  left = (tmp_path / "after_full").read_text().split()
  assert not [name for name in left if "_temp" in name or name.startswith("model.ckpt-3")], left
  assert 'model_checkpoint_path: "model.ckpt-0"' in (tmp_path / "state").read_text()

  code, stderr = _result(mount, "rerun")
  assert code == 0, stderr[-3000:]
  assert f"Resuming from {model_dir}/model.ckpt-0 " in stderr
  assert "model.ckpt-3.index" in (tmp_path / "after_rerun").read_text().split()


def test_disk_full_during_a_summary_write_names_the_event_file(tmp_path):
  # Only model.ckpt-0 is saved before the end; a summary every step fills the rest.
  mount = str(tmp_path / "disk")
  model_dir = f"{mount}/model"
  result = _in_mount_namespace(
    f"mkdir -p {mount}; mount -t tmpfs -o size={ROOM_FOR_ONE_CHECKPOINT} tmpfs {mount}\n"
    + _train(
      model_dir,
      "--config.train.epochs=5000",
      "--config.train.steps_per_loop=100",
      "--config.train.save_checkpoint_steps=1000000",
    )  # fmt: skip
  )
  assert result.returncode == 0, result.stderr[-3000:]
  code, stderr = _result(mount, "model")
  assert code == 2, stderr[-3000:]
  assert_no_traceback(stderr)
  lines = ours(stderr)
  assert len(lines) == 2, lines
  assert lines[1].startswith(f"deephub: error: cannot write {model_dir}/events.out.tfevents.")
  assert lines[1].endswith(
    f": no space left on the device; the last good checkpoint is step 0 ({model_dir}/model.ckpt-0); "
    "free space there, then rerun the same command"
  )


def test_read_only_model_dir_is_one_line(tmp_path):
  mount = str(tmp_path / "disk")
  result = _in_mount_namespace(
    f"mkdir -p {mount}; mount -t tmpfs -o size=1m tmpfs {mount}; mkdir {mount}/model; "
    f"mount -o remount,ro {mount}\n" + _train(f"{mount}/model")
  )
  assert result.returncode == 0, result.stderr[-3000:]
  code, stderr = _result(mount, "model")
  assert code == 2, stderr[-3000:]
  assert_no_traceback(stderr)
  # The model_dir lock is the first write into model_dir, so it is the one refused.
  assert ours(stderr)[1:] == [
    f"deephub: error: model_dir {mount}/model: cannot create the lock file .deephub.lock (Read-only file "
    "system); make the folder writable or use another model_dir"
  ]


@pytest.mark.parametrize("below", ["", "/sub/folder"])
def test_model_dir_that_is_a_file_is_one_line(tmp_path, below):
  path = tmp_path / "a_file"
  path.write_text("not a folder\n")
  result = run_cli("--variant=toy", f"--config.model.model_dir={path}{below}")
  assert result.returncode == 2, result.stderr[-3000:]
  assert_no_traceback(result.stderr)
  where = f" ({path} is)" if below else ""
  assert ours(result.stderr) == [
    f"deephub: error: model.model_dir {path}{below} is a file, not a folder{where}; "
    "set model.model_dir to a folder"
  ]
  assert path.read_text() == "not a folder\n"

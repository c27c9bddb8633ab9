"""The files-and-bytes progress bar of `deep utils`: drawn on terminals, silent elsewhere."""

import io
import os
import shutil
import threading

from deephub.cli.file_progress import file_progress
from deephub.resources import toy_data_dir
from tests.cli_run import child_env, deep_command
from tests.conftest import REPO
from tests.terminal import run_in_pty


class _Terminal(io.StringIO):
  def isatty(self) -> bool:
    return True


def _files(tmp_path, sizes):
  paths = []
  for i, size in enumerate(sizes):
    path = tmp_path / f"part-{i}"
    path.write_bytes(b"x" * size)
    paths.append(str(path))
  return paths


def test_bar_counts_bytes_and_files_from_threads(tmp_path):
  files = _files(tmp_path, [1024, 2048, 3072, 4096])
  stream = _Terminal()
  with file_progress(files, stream=stream) as on_file:
    threads = [threading.Thread(target=on_file, args=(path, "scanned")) for path in files]
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()
  final = stream.getvalue().split("\r")[-1]
  assert "100%" in final and "10.0k/10.0k" in final and "4/4 files" in final


def test_unreadable_files_print_a_line_with_or_without_a_terminal(tmp_path):
  files = _files(tmp_path, [10, 20])
  plain, terminal = io.StringIO(), _Terminal()
  for stream in (plain, terminal):
    with file_progress(files, stream=stream) as on_file:
      on_file(files[0], "unreadable: ends inside a record")
      on_file(files[1], "kept")
  assert plain.getvalue() == f"skipping {files[0]}, unreadable: ends inside a record\n"
  assert f"skipping {files[0]}, unreadable: ends inside a record\n" in terminal.getvalue()
  assert "2/2 files" in terminal.getvalue()


def test_deep_utils_draw_the_bar_on_a_real_terminal(tmp_path):
  for name in ("train-00000-of-00001", "validation-00000-of-00001"):
    shutil.copy(os.path.join(toy_data_dir(), name), tmp_path)
  env = child_env()
  deep = deep_command("utils")
  code, screen = run_in_pty([*deep, "generate-metadata", str(tmp_path / "*")], cwd=REPO, env=env, timeout=120)
  assert code == 0, screen
  assert "100%" in screen and "2/2 files" in screen and "Scanned 2 files" in screen
  code, screen = run_in_pty(
    [*deep, "validate", str(tmp_path / "*"), "--deep-check"], cwd=REPO, env=env, timeout=120
  )
  assert code == 0, screen
  assert "100%" in screen and "2/2 files" in screen and "2 files match their metadata (md5 checked)" in screen

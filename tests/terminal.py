"""Running a command on a real pseudo-terminal, as a user at a terminal would."""

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time


def run_in_pty(
  argv: list[str], *, cwd: str, env: dict[str, str], timeout: float = 300, columns: int = 160
) -> tuple[int, str]:
  """Runs `argv` with stdin, stdout and stderr on a new pty; returns (exit code, everything it printed).

  The pty gets a window size so that programs sizing their output to the
  terminal (tqdm) draw as they would for a user.
  """
  main_fd, child_fd = pty.openpty()
  fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
  child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=child_fd, stdout=child_fd, stderr=child_fd)
  os.close(child_fd)
  chunks, deadline = [], time.monotonic() + timeout
  try:
    while time.monotonic() < deadline:
      ready, _, _ = select.select([main_fd], [], [], 1.0)
      if not ready:
        if child.poll() is not None:
          break
        continue
      try:
        data = os.read(main_fd, 65536)
      except OSError:  # EIO: every holder of the child end has closed it.
        break
      if not data:
        break
      chunks.append(data)
    else:
      child.kill()
      raise TimeoutError(f"{argv} still running after {timeout} s")
    return child.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")
  finally:
    os.close(main_fd)

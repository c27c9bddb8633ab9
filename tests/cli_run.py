"""The `deep` command in a child process, as the end-to-end tests run it.

`python -m deephub.cli.main` runs the `deep` console script's code from this
checkout (the installed script would run whatever deephub it was installed
with); PYTHONPATH is the repository, so the child imports this worktree and
the tests' own modules (tests/models/keras_builders.py).
"""

import os
import subprocess
import sys

from tests.conftest import REPO

# The module behind the `deep` console script; `deephub` is `python -m deephub`, the same command.
DEEP_MODULE = "deephub.cli.main"
# The installed `deep` console script, beside this interpreter, for the documented commands verbatim.
DEEP_SCRIPT = os.path.join(os.path.dirname(sys.executable), "deep")


def deep_command(*args: str, module: str = DEEP_MODULE) -> list[str]:
  """`python -m MODULE ARGS` with this interpreter: for Popen or a pseudo-terminal."""
  return [sys.executable, "-m", module, *args]


def child_env(*, drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
  """This process's environment with PYTHONPATH at the repository, without `drop`, plus `extra`."""
  env = {key: value for key, value in os.environ.items() if key not in drop}
  return {**env, "PYTHONPATH": REPO, **extra}


def script_env() -> dict[str, str]:
  """This process's environment with the installed `deep` script first on PATH; fails without the script.

  No PYTHONPATH: the script runs as a user's shell would run it.
  """
  assert os.path.isfile(DEEP_SCRIPT), f"the deep console script is not installed beside {sys.executable}"
  return {**os.environ, "PATH": f"{os.path.dirname(DEEP_SCRIPT)}:{os.environ['PATH']}"}


def run_deep(
  *args: str,
  module: str = DEEP_MODULE,
  cwd=REPO,
  drop_env: tuple[str, ...] = (),
  timeout: float = 300,
) -> subprocess.CompletedProcess:
  """Runs `deep ARGS` in a child process to its end; returns it with stdout and stderr as text.

  Args:
    args: the command line after `deep`.
    module: what `python -m` runs; `deephub` tests that entry point.
    cwd: the working folder (relative paths, `runs/`); the repository unless given.
    drop_env: variables the child must not inherit (the user's environment
      has no TF_CPP_MIN_LOG_LEVEL, say).
    timeout: seconds before the run fails the test instead of hanging it.
  """
  return subprocess.run(
    deep_command(*args, module=module),
    cwd=cwd,
    env=child_env(drop=drop_env),
    capture_output=True,
    text=True,
    timeout=timeout,
  )

"""A quiet console: TensorFlow's native start-up lines hidden unless asked for.

Loading TensorFlow on a machine without a GPU prints, from C++ straight to
file descriptor 2:

  WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
  I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
  E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ...

No in-process setting hides all of them (checked on TensorFlow 2.21):
- The first two come from absl's C++ logging. Before `absl::InitializeLog()`
  (which TensorFlow never calls) absl writes every message to stderr, with
  that warning once per copy of absl (TensorFlow's libraries carry two, hence
  twice). Its only switches are C++ calls (`absl::SetMinLogLevel`,
  `SetStderrThreshold`) or absl C++ flags that TensorFlow does not parse;
  `TF_CPP_MIN_LOG_LEVEL` and `TF_CPP_MAX_VLOG_LEVEL` do not reach it.
- The cuInit line is TensorFlow's own logging: `TF_CPP_MIN_LOG_LEVEL=3` hides
  it, but also every real C++ error, so we keep 2 and drop that line alone.
- `CUDA_VISIBLE_DEVICES=` changes none of them (the driver probe runs anyway)
  and would hide GPUs that a user has, so it is not used.

So `load_tensorflow` imports TensorFlow and lists its devices (where the
probe runs) with file descriptor 2 going through a pipe, and passes on every
line except those above. Any other line (a real error, a Python traceback)
goes through unchanged. `TF_CPP_MIN_LOG_LEVEL=0` (what `deep -l DEBUG`/`INFO`
and `python -m deephub.train -v 1` set) turns the filter off.
"""

import contextlib
import gc
import os
import re
import sys
import threading
from collections.abc import Iterator

# Native lines that only say "this machine has no (usable) GPU". The cuDNN /
# cuFFT / cuBLAS "Unable to register ... factory" lines are TensorFlow
# 2.16-2.17's CUDA builds registering their plugins twice on import.
NOISE = re.compile(
  rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
  rb"|cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"
  rb"|cuda_platform\.cc:\d+\] failed call to cuInit"
  rb"|cuda_(dnn|fft|blas)\.cc:\d+\] Unable to register cu(DNN|FFT|BLAS) factory"
  rb"|cuda_executor\.cc:\d+\] could not open file to read NUMA node"
)


def verbose() -> bool:
  """True when the user asked for TensorFlow's native lines (`TF_CPP_MIN_LOG_LEVEL=0`)."""
  return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "0"


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern[bytes] = NOISE) -> Iterator[None]:
  """Drops lines matching `noise` that anything in the process writes to fd 2 meanwhile.

  A thread copies the pipe to the real stderr line by line as they come, so a
  crash inside the block still shows what was printed before it.
  """
  sys.stderr.flush()
  try:
    real = os.dup(2)
  except OSError:  # No fd 2 at all (`2>&-`): nothing to filter.
    yield
    return
  read_end, write_end = os.pipe()

  def forward() -> None:
    with os.fdopen(read_end, "rb") as pipe:
      for line in pipe:
        if not noise.search(line.rstrip(b"\r\n")):
          try:
            os.write(real, line)
          except OSError:  # stderr closed (`2>&-`, a reader that quit): keep draining.
            pass

  thread = threading.Thread(target=forward, name="deephub-stderr-filter", daemon=True)
  thread.start()
  os.dup2(write_end, 2)
  os.close(write_end)
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(real, 2)  # Closes the pipe's last write end: the thread sees EOF.
    thread.join()
    os.close(real)


def load_tensorflow() -> None:
  """Imports TensorFlow and probes its devices, hiding the no-GPU lines unless verbose.

  Entry points call this before the engine imports TensorFlow; afterwards
  nothing prints those lines again (the import and the probe run once).
  """
  if "tensorflow" in sys.modules:
    return
  quiet = contextlib.nullcontext() if verbose() else filtered_stderr()
  with quiet, _import_time_objects_kept_out_of_gc():
    import tensorflow as tf

    tf.config.list_physical_devices()


@contextlib.contextmanager
def _import_time_objects_kept_out_of_gc() -> Iterator[None]:
  """Runs the block with Python's cyclic garbage collector off, then freezes what it created.

  Importing TensorFlow (with Keras) creates about 590,000 objects that live
  as long as the process. Each full collection walks all of them: six ran
  during the import, 0.5 s of a 4.5 s import on this 2-core machine, and a
  collection afterwards found only about 1,600 unreachable objects.
  `gc.freeze()` moves the import's objects into the permanent generation,
  so later full collections (while tracing, while training) skip them too.
  The price: the few cycles the import left behind are never freed.
  """
  was_enabled = gc.isenabled()
  gc.disable()
  try:
    yield
  finally:
    gc.freeze()
    if was_enabled:
      gc.enable()

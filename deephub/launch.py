"""The training path both entry points share, after each has built the config.

`python -m deephub.train --variant=NAME --config.KEY=V` and
`deep trainer train NAME -p KEY V` differ only in how they read flags; from
the loaded, overridden config on they call `train_variant`, so the same
variant and overrides train the same run.

Every way a run ends that the user caused is one line on stderr: a stop
signal (`run_mode` returns the exit code), a full disk or an unwritable
model_dir (a `UserError`, which the entry points print).
"""

import contextlib
import os
import signal
import sys
import threading

import ml_collections
from absl import logging

from deephub import console, write_errors
from deephub.errors import Interrupted, UserError


def resolve_model_dir(config: ml_collections.ConfigDict, variant: str) -> None:
  """Sets `model.model_dir` to `runs/<variant>` under the current folder when it is empty."""
  if not config.model.model_dir:
    config.model.model_dir = os.path.abspath(os.path.join("runs", os.path.splitext(variant)[0]))
    logging.info("model.model_dir is not set; training into %s", config.model.model_dir)


def check_model_dir(model_dir: str) -> None:
  """Refuses a local model_dir that is, or lies under, a file before anything is built.

  Raises:
    UserError: model_dir or a folder above it is a file.
  """
  if "://" in model_dir:
    return
  existing = os.path.abspath(model_dir)
  while not os.path.exists(existing):  # The folders still to create are no problem.
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    where = "" if existing == os.path.abspath(model_dir) else f" ({existing} is)"
    raise UserError(
      f"model.model_dir {model_dir} is a file, not a folder{where}; set model.model_dir to a folder"
    )


def train_variant(config: ml_collections.ConfigDict, variant: str) -> dict[str, float]:
  """Resolves the model_dir, trains and evaluates, and prints a start and a finish line.

  Args:
    config: the loaded variant with the user's overrides applied.
    variant: the variant's name, for the default model_dir and the messages.

  Returns:
    The final evaluation's scalars; its `stop_reason` and `stop_signal`
    (engine.schedule.TrainResult) tell whether a stop signal ended training early.

  Raises:
    UserError: invalid config or data.
  """
  resolve_model_dir(config, variant)
  check_model_dir(config.model.model_dir)
  print(f"deephub: training {variant} into {config.model.model_dir}", file=sys.stderr, flush=True)
  console.load_tensorflow()  # Before the engine imports it: hides the no-GPU lines.
  from deephub.engine import StopReason, train_and_evaluate  # Deferred: loads TensorFlow.

  results = train_and_evaluate(config)
  if results.stop_reason is StopReason.PREEMPTED:
    import tensorflow as tf  # Loaded by now.

    stopped_by = signal.Signals(results.stop_signal).name
    print(
      f"deephub: stopped {variant} early for {stopped_by} with a checkpoint "
      f"in {config.model.model_dir} ({tf.train.latest_checkpoint(config.model.model_dir)}); "
      "rerun the same command to continue",
      file=sys.stderr,
      flush=True,
    )
    return results
  print(
    f"deephub: finished {variant} in {config.model.model_dir}: "
    + ", ".join(f"{k} = {v:.5g}" for k, v in results.items()),
    file=sys.stderr,
    flush=True,
  )
  print_next_steps(config.model.model_dir)
  return results


def print_next_steps(model_dir: str) -> None:
  """After a finished run: where it is, the TensorBoard command, the newest export."""
  from deephub import next_steps

  print("\n".join(next_steps.lines(model_dir)), file=sys.stderr, flush=True)


MODES = ("train", "evaluate", "export", "predict")


def run_mode(
  config: ml_collections.ConfigDict, variant: str, mode: str, *, predictions_path: str | None = None
) -> int:
  """Trains, evaluates, exports or predicts with the newest checkpoint, printing one result line.

  Args:
    config: the loaded variant with the user's overrides applied.
    variant: the variant's name, for the default model_dir and the messages.
    mode: one of MODES.
    predictions_path: where predict writes JSON lines (default
      `model_dir/predictions.jsonl`).

  Returns:
    The exit code: 0; 130 when Ctrl-C stopped training (with a checkpoint);
    128 + the signal's number when a signal stopped other work (SIGTERM
    during training is a preemption: 0, and the rerun continues).

  Raises:
    UserError: invalid config or data, no checkpoint to work from, or a
      write that failed in the destination (disk full, read-only model_dir).
  """
  try:
    with _signals_interrupt():
      results = _run_mode(config, variant, mode, predictions_path)
  except (Interrupted, KeyboardInterrupt) as stop:
    signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
    print(
      f"deephub: {mode} of {variant} stopped by {signal.Signals(signum).name} before it finished; "
      "rerun the same command to do it again",
      file=sys.stderr,
      flush=True,
    )
    return 128 + signum
  except Exception as error:
    explained = _explain_write_error(error, config.model.model_dir)
    if explained is None:
      raise
    raise explained from None
  if mode == "train" and results.stop_signal == signal.SIGINT:
    return 128 + signal.SIGINT
  return 0


def _run_mode(
  config: ml_collections.ConfigDict, variant: str, mode: str, predictions_path: str | None
) -> dict[str, float] | None:
  """Runs `mode`; returns training's result (its `stop_signal` says whether a signal stopped it)."""
  if mode == "train":
    return train_variant(config, variant)
  resolve_model_dir(config, variant)
  console.load_tensorflow()
  from deephub import engine  # Deferred: loads TensorFlow.

  if mode == "evaluate":
    results = engine.evaluate(config)
    print(f"deephub: evaluated {variant}: " + ", ".join(f"{k} = {v:.5g}" for k, v in results.items()),
          file=sys.stderr)  # fmt: skip
  elif mode == "export":
    print(f"deephub: exported {variant} to {engine.export(config)}", file=sys.stderr)
  elif mode == "predict":
    path = predictions_path or os.path.join(config.model.model_dir, "predictions.jsonl")
    print(f"deephub: wrote {engine.predict(config, path)} predictions to {path}", file=sys.stderr)
  else:
    raise ValueError(f"unknown mode {mode!r}")
  return None


def _explain_write_error(error: BaseException, model_dir: str) -> UserError | None:
  """A UserError for an error a full or unwritable destination caused anywhere in a mode, else None."""
  if isinstance(error, UserError) or not model_dir:
    return None
  return write_errors.explain(error, model_dir=model_dir, writing=False)


@contextlib.contextmanager
def _signals_interrupt():
  """SIGTERM raises `Interrupted` (as Ctrl-C raises KeyboardInterrupt) where training does not catch it.

  Training and evaluation install their own handlers (engine.preemption) and
  stop cleanly; this covers the rest (start-up, export, predict), which has
  nothing to save, so it ends with one line instead of a silent exit 143.
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = signal.signal(signal.SIGTERM, _raise_interrupted)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


def _raise_interrupted(signum, frame) -> None:
  del frame
  raise Interrupted(signum)

"""The training path both entry points share, after each has built the config.

`python -m deephub.train --variant=NAME --config.KEY=V` and
`deep trainer train NAME -p KEY V` differ only in how they read flags; from
the loaded, overridden config on they call `train_variant`, so the same
variant and overrides train the same run.
"""

import os
import sys

import ml_collections
from absl import logging

from deephub import console


def resolve_model_dir(config: ml_collections.ConfigDict, variant: str) -> None:
  """Sets `model.model_dir` to `runs/<variant>` under the current folder when it is empty."""
  if not config.model.model_dir:
    config.model.model_dir = os.path.abspath(os.path.join("runs", os.path.splitext(variant)[0]))
    logging.info("model.model_dir is not set; training into %s", config.model.model_dir)


def train_variant(config: ml_collections.ConfigDict, variant: str) -> dict[str, float]:
  """Resolves the model_dir, trains and evaluates, and prints a start and a finish line.

  Args:
    config: the loaded variant with the user's overrides applied.
    variant: the variant's name, for the default model_dir and the messages.

  Returns:
    The final evaluation's scalars.

  Raises:
    UserError: invalid config or data.
  """
  resolve_model_dir(config, variant)
  print(f"deephub: training {variant} into {config.model.model_dir}", file=sys.stderr, flush=True)
  console.load_tensorflow()  # Before the engine imports it: hides the no-GPU lines.
  from deephub.engine import preemption, train_and_evaluate  # Deferred: loads TensorFlow.

  results = train_and_evaluate(config)
  if preemption.stopped_early():
    print(
      f"deephub: stopped {variant} early for SIGTERM with a checkpoint in {config.model.model_dir}; "
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
) -> None:
  """Trains, evaluates, exports or predicts with the newest checkpoint, printing one result line.

  Args:
    config: the loaded variant with the user's overrides applied.
    variant: the variant's name, for the default model_dir and the messages.
    mode: one of MODES.
    predictions_path: where predict writes JSON lines (default
      `model_dir/predictions.jsonl`).

  Raises:
    UserError: invalid config or data, or no checkpoint to work from.
  """
  if mode == "train":
    train_variant(config, variant)
    return
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

"""`deep trainer train|evaluate|export|predict VARIANT`.

Each reads the variant and the `-p` overrides and then takes the same path as
`python -m deephub.train --mode=...` (`deephub.launch.run_mode`).
"""

import argparse

from deephub.cli import flags
from deephub.cli.commands import Command


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
  """VARIANT, -d, -p and -P: what every trainer command needs to build a config."""
  parser.add_argument("variant", metavar="VARIANT", help="configs/variants/VARIANT.py, else VARIANT.yaml")
  parser.add_argument(
    "-d", "--variants-dir", metavar="DIR", help="folder of the variant (default: configs/variants)"
  )
  flags.add_override_arguments(parser, "override a config value")


def resolve_config(args: argparse.Namespace):
  """Loads the variant and applies -p/-P and the warm-start flags, in that order.

  Returns:
    The locked `ml_collections.ConfigDict` to train.
  """
  # Deferred, like every import a command needs: `deep --help` stays fast.
  from deephub.config import overrides, variants

  config = variants.load_variant(args.variant, args.variants_dir)
  overrides.apply_overrides(config, args.param_expr)
  if getattr(args, "warm_start_checkpoint", None) is not None:
    config.train.warm_start_check_point = args.warm_start_checkpoint
  if getattr(args, "warm_start_vars", None) is not None:
    config.train.warm_start_variables_regex = args.warm_start_vars
  return config


def _train_arguments(parser: argparse.ArgumentParser) -> None:
  add_variant_arguments(parser)
  parser.add_argument(
    "-g",
    "--gpu-device-id",
    type=int,
    action="append",
    metavar="N",
    help="GPU to use (repeatable); -1 picks the idle GPUs via nvidia-smi",
  )
  parser.add_argument(
    "--warm-start-checkpoint", metavar="PATH", help="checkpoint or model_dir to initialise a new run from"
  )
  parser.add_argument(
    "--warm-start-vars",
    metavar="REGEX",
    help="trainable variables to warm-start (default: the variant's, '.*')",
  )


def _train(args: argparse.Namespace) -> int:
  from deephub import launch
  from deephub.cli import gpus

  # Before anything imports TensorFlow (a new model.KEY override imports the model's module).
  gpus.set_visible_devices(args.gpu_device_id)
  config = resolve_config(args)
  if args.gpu_device_id:
    # CUDA_VISIBLE_DEVICES now holds exactly the chosen GPUs: train on all of them.
    config.runtime.gpus = "all"
  return launch.run_mode(config, args.variant, "train")


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
  add_variant_arguments(parser)
  parser.add_argument(
    "-o",
    "--output",
    metavar="PATH",
    help="JSON-lines predictions file (default: model_dir/predictions.jsonl)",
  )


def _mode(mode: str):
  def run(args: argparse.Namespace) -> int:
    from deephub import launch

    return launch.run_mode(
      resolve_config(args), args.variant, mode, predictions_path=getattr(args, "output", None)
    )

  return run


COMMANDS = [
  Command("train", "train and evaluate a variant into its model_dir", _train_arguments, _train),
  Command("evaluate", "evaluate the newest checkpoint on the eval feeder", add_variant_arguments,
          _mode("evaluate")),
  Command("export", "export the newest checkpoint as a SavedModel for serving", add_variant_arguments,
          _mode("export")),
  Command("predict", "write predictions of the newest checkpoint over the predict (else eval) feeder",
          _predict_arguments, _mode("predict")),
]  # fmt: skip

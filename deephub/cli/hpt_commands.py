"""`deep hpt run|status TUNE.yaml`: hyperparameter search over a variant (see deephub/hpt).

Optuna, TensorFlow and the tune-file checks are imported only once a command
runs, so `deep --help` stays fast and works without the `hpt` extra.
"""

import argparse
import os
import signal
import subprocess
import sys

from deephub.cli import flags
from deephub.cli.commands import Command
from deephub.errors import UserError


def _common_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("tune_file", metavar="TUNE.yaml", help="the tune file (goal, metric, params, ...)")
  parser.add_argument(
    "--study-dir", metavar="DIR", help="where trial-<number> model_dirs go (default: runs/hpt/<study name>)"
  )
  parser.add_argument(
    "--storage",
    metavar="URL",
    help="SQLAlchemy URL of the study database, e.g. postgresql://user:pw@host/db (default: SQLite "
    "in the study dir)",
  )
  parser.add_argument("--trials", type=int, metavar="N", help="trials in the study (default: max_trials)")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
  _common_arguments(parser)
  parser.add_argument("--workers", type=int, default=1, metavar="N", help="trial processes on this machine")
  flags.add_override_arguments(
    parser,
    "fix a config value in every trial, as in `deep trainer train` (the old fixed_model_params.KEY / "
    "fixed_train_params.KEY are read as model.KEY / train.KEY)",
  )
  # Set by `--workers N` on the processes it starts: the worker's index (seed offset), checks done.
  parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)


def _old_prefix(item):
  """A `-p`/`-P` item as an Override, the old `fixed_model_params.KEY` read as `model.KEY` (train. alike)."""
  from deephub.config.overrides import Override

  override = item if isinstance(item, Override) else Override(*item)
  for old, new in (("fixed_model_params.", "model."), ("fixed_train_params.", "train.")):
    if override.key.startswith(old):
      return override._replace(key=new + override.key[len(old) :])
  return override


def _load(args: argparse.Namespace):
  """The checked spec with -p applied, the variant config, the study dir and storage URL."""
  import logging

  from deephub.config import overrides, variants
  from deephub.hpt import require_optuna, spec

  optuna = require_optuna()
  if logging.getLogger().getEffectiveLevel() > logging.INFO:
    # Optuna logs every study load and trial at INFO; `deep` prints its own line per trial.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
  tune = spec.load(args.tune_file)
  pairs = [_old_prefix(item) for item in getattr(args, "param_expr", [])]
  if pairs:
    parsed = variants.load_variant(tune.variant, tune.variants_dir)
    overrides.apply_overrides(parsed, pairs)
    extra = {pair.key: spec.get_value(parsed, pair.key) for pair in pairs}
    tune = spec.load(args.tune_file, extra_fixed=extra)
  config = variants.load_variant(tune.variant, tune.variants_dir)
  spec.check_against(tune, config)
  if args.trials is not None and args.trials < 1:
    raise UserError(f"--trials is {args.trials}; set it to 1 or more")
  study_dir = args.study_dir or os.path.join("runs", "hpt", tune.study_name)
  if "://" not in study_dir:  # gs://... stays as it is; a local path is made absolute for the workers.
    study_dir = os.path.abspath(study_dir)
  return tune, config, study_dir


def _run(args: argparse.Namespace) -> int:
  if args.workers < 1:
    raise UserError(f"--workers is {args.workers}; set it to 1 or more")
  tune, config, study_dir = _load(args)
  from deephub.hpt import hparams, metrics
  from deephub.hpt import study as studies

  max_trials = args.trials or tune.max_trials
  if args.worker_index is None:  # The parent checks once; its workers trust it.
    names = metrics.eval_scalar_names(config)
    if tune.metric not in names:
      raise UserError(
        f"{tune.path}: metric {tune.metric!r} is not an eval scalar of {tune.variant}; it reports "
        f"{', '.join(names)}"
      )
  url = studies.storage_url(study_dir, args.storage)
  if args.storage is None:
    os.makedirs(study_dir, exist_ok=True)  # The SQLite file goes there.
  storage = studies.open_storage(url)
  studies.open_study(tune, storage)  # Created once here, before workers race to create it.
  if args.worker_index is None:
    hparams.write_study_config(study_dir, tune.params, tune.metric)
  if args.workers > 1:
    failed = _run_workers(args, study_dir, url, max_trials)
    if failed:
      raise UserError(
        f"{failed} of {args.workers} workers failed (see their errors above); rerun to continue"
      )
  else:
    studies.work(tune, study_dir, storage, max_trials=max_trials, seed_offset=args.worker_index or 0)
  if args.worker_index is None:
    study = studies.open_study(tune, storage)
    done = studies.finished_count(study, max_trials)
    print(
      f"deep hpt: {done} of {max_trials} trials finished in {study_dir}; `deep hpt status {args.tune_file}` "
      "shows them",
      file=sys.stderr,
    )
  return 0


def _run_workers(args: argparse.Namespace, study_dir: str, url: str, max_trials: int) -> int:
  """Runs `--workers` copies of this command with one worker each; returns how many failed."""
  base = [sys.executable, "-m", "deephub.cli.main", "--logging-stream", args.logging_stream]
  if args.logging_level:
    base += ["-l", args.logging_level]
  base += ["hpt", "run", args.tune_file]
  base += ["--study-dir", study_dir, "--storage", url, "--trials", str(max_trials), "--workers", "1"]
  for item in map(_old_prefix, args.param_expr):
    base += ["-P" if item.plain else "-p", item.key, item.text]
  children = [subprocess.Popen([*base, "--worker-index", str(i)]) for i in range(args.workers)]

  def forward(signum, frame):  # SIGTERM to the parent stops every worker cleanly.
    del frame
    for child in children:
      child.send_signal(signum)

  previous = signal.signal(signal.SIGTERM, forward)
  try:
    return sum(1 for child in children if child.wait() != 0)
  finally:
    signal.signal(signal.SIGTERM, previous)


def _status(args: argparse.Namespace) -> int:
  tune, _, study_dir = _load(args)
  import optuna

  from deephub.hpt import status
  from deephub.hpt import study as studies

  url = studies.storage_url(study_dir, args.storage)
  if args.storage is None and not os.path.exists(os.path.join(study_dir, "study.db")):
    raise UserError(
      f"no study in {study_dir}; run `deep hpt run {args.tune_file}` first (or pass --study-dir)"
    )
  try:
    study = optuna.load_study(study_name=tune.study_name, storage=studies.open_storage(url))
  except KeyError:
    raise UserError(
      f"no study {tune.study_name!r} in that storage; run `deep hpt run {args.tune_file}` first"
    ) from None
  print("\n".join(status.report(tune, study, study_dir)))
  return 0


COMMANDS = [
  Command("run", "run (or continue) the hyperparameter search of a tune file", _run_arguments, _run),
  Command("status", "print the trials of a tune file's study, best first", _common_arguments, _status),
]

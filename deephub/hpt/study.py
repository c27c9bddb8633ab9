"""The Optuna study of a tune file: its storage, its workers, and taking over orphaned trials.

Storage is SQLite in the study dir unless a URL is given; any SQLAlchemy URL
(`postgresql://user:pw@host/db`) lets workers on many machines share one
study. Trial numbers come from the storage, so each is run by one worker.

A worker that dies (SIGKILL, a lost machine) leaves its trial RUNNING. Every
worker records its owner (`host pid`) on its trial and a heartbeat every
`HEARTBEAT_SECS`; any worker that finds a RUNNING trial whose owner is dead
(same host, no such process) or silent for `STALE_SECS` puts it back to
WAITING. Optuna's `ask()` hands out WAITING trials first, atomically, with
the values they were given, and the trial resumes from the checkpoint in its
model_dir: it is neither restarted from zero nor counted twice.
"""

import os
import socket
import sys
import threading
import time

import optuna
from absl import logging

from deephub.errors import UserError
from deephub.hpt import INSTALL_HINT
from deephub.hpt.records import ERROR_ATTR, HEARTBEAT_ATTR, OWNER_ATTR
from deephub.hpt.spec import TuneSpec

# Heartbeats use each machine's clock: machines sharing a study need clocks
# that agree (NTP) to well within STALE_SECS.
HEARTBEAT_SECS = 10
STALE_SECS = 60
# How long a worker that took over an orphaned trial waits before checking it is still its own.
CLAIM_SETTLE_SECS = 2
# Trials that count towards max_trials: the finished ones.
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def storage_url(study_dir: str, url: str | None) -> str:
  """`url`, or SQLite in the study dir (embedded: nothing to start).

  Raises:
    UserError: no URL for a study dir that is not local (SQLite needs a local file).
  """
  if url is None and "://" in study_dir:
    raise UserError(f"--study-dir {study_dir} is not local, so SQLite cannot live there; pass --storage URL")
  return url or f"sqlite:///{os.path.abspath(os.path.join(study_dir, 'study.db'))}"


def _hide_password(url: str) -> str:
  head, at, tail = url.rpartition("@")
  if not at or ":" not in head.split("//", 1)[-1]:
    return url
  scheme_user = head.rsplit(":", 1)[0]
  return f"{scheme_user}:***@{tail}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
  """An RDB storage for `url`, with the failure turned into one line.

  Raises:
    UserError: a missing database driver or an unreachable database.
  """
  import sqlalchemy.exc

  # SQLite: several local workers wait for the write lock instead of failing at once.
  kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
  try:
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
  except ImportError:  # Optuna's word for a missing database driver.
    raise UserError(f"storage {_hide_password(url)}: no driver for its database; {INSTALL_HINT}") from None
  except (sqlalchemy.exc.SQLAlchemyError, ValueError) as error:
    reason = " ".join(str(error).split("\n")[0].split())
    raise UserError(f"cannot open storage {_hide_password(url)}: {reason}") from None


def open_study(spec: TuneSpec, storage: optuna.storages.RDBStorage, *, seed_offset: int = 0) -> optuna.Study:
  """Creates the study named in the tune file, or loads it if it exists."""
  pruner = (
    optuna.pruners.MedianPruner(
      n_startup_trials=spec.pruner_startup_trials, n_warmup_steps=spec.pruner_warmup_steps
    )
    if spec.pruner == "median"
    else optuna.pruners.NopPruner()
  )
  # Each local worker gets its own seed, or all would sample the same values.
  seed = None if spec.seed is None else spec.seed + seed_offset
  study = optuna.create_study(
    storage=storage,
    study_name=spec.study_name,
    direction="maximize" if spec.maximize else "minimize",
    sampler=optuna.samplers.TPESampler(seed=seed),
    pruner=pruner,
    load_if_exists=True,
  )
  if study.direction != (
    optuna.study.StudyDirection.MAXIMIZE if spec.maximize else optuna.study.StudyDirection.MINIMIZE
  ):
    raise UserError(
      f"study {spec.study_name!r} in this storage was created with the other goal; set goal back, or "
      "set study_name (or --study-dir) to start a new study"
    )
  return study


def finished_count(study: optuna.Study, max_trials: int) -> int:
  """Finished trials among numbers 0..max_trials-1."""
  return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED) if t.number < max_trials)


def _owner() -> str:
  return f"{socket.gethostname()} {os.getpid()}"


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Exists, owned by someone else.
  return True


def is_orphaned(trial: optuna.trial.FrozenTrial, now: float) -> bool:
  """Whether a RUNNING trial's worker is gone: same host and no such process, or no heartbeat."""
  owner = trial.system_attrs.get(OWNER_ATTR)
  heartbeat = trial.system_attrs.get(HEARTBEAT_ATTR)
  if owner is None or heartbeat is None:
    # Killed between ask() and its first heartbeat: judged by its start time.
    started = trial.datetime_start.timestamp() if trial.datetime_start else now
    return now - started > STALE_SECS
  host, _, pid = owner.rpartition(" ")
  if host == socket.gethostname() and not _pid_alive(int(pid)):
    return True
  return now - heartbeat > STALE_SECS


def reclaim_orphans(study: optuna.Study, storage: optuna.storages.RDBStorage) -> list[int]:
  """Puts RUNNING trials whose worker is gone back to WAITING; returns their numbers."""
  now = time.time()
  reclaimed = []
  for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
    if is_orphaned(trial, now):
      # Idempotent when two workers do it at once; ask() then hands it to exactly one.
      storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.WAITING)
      reclaimed.append(trial.number)
      logging.warning(
        "Trial %d was left running by %s; it will resume", trial.number, trial.system_attrs.get(OWNER_ATTR)
      )
  return reclaimed


class _Heartbeat:
  """Marks a trial as ours and keeps its heartbeat fresh from a background thread."""

  def __init__(self, storage: optuna.storages.RDBStorage, trial_id: int):
    self.storage = storage
    self.trial_id = trial_id
    self.stop = threading.Event()
    storage.set_trial_system_attr(trial_id, OWNER_ATTR, _owner())
    self.beat()
    self.thread = threading.Thread(target=self._run, daemon=True, name="hpt-heartbeat")
    self.thread.start()

  def beat(self) -> None:
    self.storage.set_trial_system_attr(self.trial_id, HEARTBEAT_ATTR, time.time())

  def _run(self) -> None:
    while not self.stop.wait(HEARTBEAT_SECS):
      try:
        self.beat()
      except optuna.exceptions.UpdateFinishedTrialError:
        return
      except Exception as error:  # A database hiccup must not kill the trial; the next beat retries.
        logging.warning("hpt heartbeat failed: %s", error)

  def close(self) -> None:
    self.stop.set()
    self.thread.join()


def work(
  spec: TuneSpec,
  study_dir: str,
  storage: optuna.storages.RDBStorage,
  *,
  max_trials: int,
  seed_offset: int = 0,
) -> int:
  """Runs trials until trial numbers 0..max_trials-1 are all taken; returns how many this worker ran.

  Stops early (leaving the current trial to a rerun) when SIGTERM arrives.
  """
  # Deferred: loads TensorFlow, which `deep hpt status` does not need.
  from deephub.hpt.trial import run_trial

  study = open_study(spec, storage, seed_offset=seed_offset)
  ran = 0
  while True:
    reclaim_orphans(study, storage)
    if finished_count(study, max_trials) >= max_trials:
      return ran
    trial = study.ask()
    if trial.number >= max_trials:
      # Every trial is finished or taken: hand the surplus back (a larger --trials uses it).
      storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.WAITING)
      return ran
    resumed = OWNER_ATTR in storage.get_trial(trial._trial_id).system_attrs
    heartbeat = _Heartbeat(storage, trial._trial_id)
    if resumed and not _still_ours(storage, trial._trial_id):
      heartbeat.close()
      continue
    try:
      go_on = run_trial(study, storage, trial, spec, study_dir)
    finally:
      heartbeat.close()
    ran += 1
    _print_outcome(storage.get_trial(trial._trial_id), spec.metric)
    if not go_on:
      return ran


def _still_ours(storage: optuna.storages.RDBStorage, trial_id: int) -> bool:
  """After taking over an orphaned trial: whether it is still ours once other workers' reclaims settle.

  Another worker may have judged the trial orphaned just before we took it
  and put it back to WAITING just after (reading and writing are not one
  atomic step); then a third could take it too. Waiting a moment and looking
  again closes that window: whoever no longer owns it lets it go.
  """
  time.sleep(CLAIM_SETTLE_SECS)
  trial = storage.get_trial(trial_id)
  return trial.state == optuna.trial.TrialState.RUNNING and trial.system_attrs.get(OWNER_ATTR) == _owner()


def _print_outcome(trial: optuna.trial.FrozenTrial, metric: str) -> None:
  """One line per trial on stderr, whatever the log level: a sweep is long and otherwise silent."""
  state = trial.state.name.lower()
  outcome = (
    f"{metric} = {trial.value:.6g}" if trial.value is not None else trial.user_attrs.get(ERROR_ATTR, "")
  )
  params = ", ".join(f"{key}={value}" for key, value in sorted(trial.params.items()))
  print(f"deep hpt: trial {trial.number} {state}: {outcome} ({params})", file=sys.stderr, flush=True)

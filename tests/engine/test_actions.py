"""The periodic actions, each alone with a fake clock and fakes for what it calls: no model, no files.

The checkpoint and evaluation actions and their order are built by schedule.py's own functions from a
`train` section, so what is tested is what training runs.
"""

import errno

import numpy as np
import pytest

from deephub.config import defaults
from deephub.engine import schedule
from deephub.engine.actions import (
  Evaluate,
  LogProgress,
  NonFiniteLossError,
  RollBack,
  SaveCheckpoint,
  StopEarly,
  StopOnSignal,
  WriteSummaries,
)
from deephub.engine.checkpoint import NonFiniteValuesError
from deephub.engine.controller import Loop, StopReason
from deephub.engine.input_state import INPUT_STATE_KEY
from deephub.engine.triggers import PeriodicTrigger
from deephub.errors import UserError
from tests.engine.test_triggers import FakeClock


def loop_record(first, last, total=100, loss=None, finite=None):
  steps = np.arange(first, last + 1)
  logs = {"loss": np.asarray(loss if loss is not None else steps, dtype=np.float32)}
  finite = np.asarray(finite if finite is not None else [True] * len(steps))
  return Loop(first_step=first, last_step=last, total_steps=total, logs=logs, finite=finite, secs=2.0)


class FakeStep:
  def __init__(self, value=0):
    self.value = value

  def numpy(self):
    return np.int64(self.value)


class FakeSaver:
  def __init__(self, model_dir="/tmp/model", latest=None, fail=None):
    self.model_dir, self._latest, self.fail = model_dir, latest, fail
    self.saved, self.restored = [], []
    self.entries = {"w": None, "global_step": None, INPUT_STATE_KEY: None}

  def latest(self):
    return self._latest

  def save(self, step):
    if self.fail is not None:
      raise self.fail
    self.saved.append(step)
    self._latest = f"{self.model_dir}/model.ckpt-{step}"

  def restore(self, prefix, keys=None):
    self.restored.append((prefix, keys))

  def remove_partial_saves(self):
    pass


class FakeWriter:
  def __init__(self):
    self.written, self.flushes = [], 0

  def write_scalars(self, step, scalars):
    self.written.append((step, dict(scalars)))

  def flush(self):
    self.flushes += 1


def train_section(**keys):
  """The defaults' `train` section with `keys` set (periods in steps or seconds)."""
  train = defaults.base_config().train
  for key, value in keys.items():
    train[key] = value
  return train


def save_action(saver=None, every_steps=5, step=0, is_chief=True):
  """The checkpoint action as schedule.py builds it, on train.save_checkpoint_steps = every_steps."""
  return schedule.save_action(
    train_section(save_checkpoint_steps=every_steps, save_checkpoint_secs=None),
    saver or FakeSaver(),
    FakeStep(step),
    start_step=step,
    is_chief=is_chief,
    clock=FakeClock(),
  )


def test_save_checkpoint_on_crossing_its_period_once_per_step():
  save = save_action()
  for first, last in [(1, 4), (5, 8), (9, 12)]:
    save(loop_record(first, last))
  save.save(12)  # Already saved: nothing written twice.
  assert save.saver.saved == [8, 12] and save.saved_step == 12


def test_save_checkpoint_on_a_worker_writes_nothing_but_tracks_the_step():
  save = save_action(is_chief=False)
  save(loop_record(1, 5))
  assert save.saver.saved == [] and save.saved_step == 5


def test_save_checkpoint_resumed_knows_its_checkpoint():
  assert save_action(FakeSaver(latest="/tmp/model/model.ckpt-7"), step=7).saved_step == 7
  assert save_action(step=0).saved_step is None


def test_save_progress_keeps_the_last_good_checkpoint_on_non_finite_values(caplog):
  save = save_action(
    FakeSaver(fail=NonFiniteValuesError("refusing to write checkpoint 3: w holds NaN or Inf"))
  )
  save.global_step.value = 3
  save.save_progress()
  assert save.saved_step is None
  assert any("Not saving progress" in m for m in caplog.messages)


def test_save_checkpoint_explains_a_full_disk():
  save = save_action(FakeSaver(fail=OSError(errno.ENOSPC, "No space left on device")))
  with pytest.raises(UserError, match=r"cannot write /tmp/model/model.ckpt-5: no space left on the device"):
    save.save(5)


def test_write_summaries_at_multiples_with_the_rate_on_the_last():
  writer = FakeWriter()
  WriteSummaries(writer, every_steps=3)(loop_record(1, 8))
  assert [step for step, _ in writer.written] == [3, 6]
  assert writer.written[0][1] == {"loss": 3.0}
  assert writer.written[1][1] == {"loss": 6.0, "global_step/sec": 4.0}  # 8 steps in 2 seconds.
  assert writer.flushes == 1


class FakeEarlyStopping:
  def __init__(self, stop_at=None):
    self.recorded, self.stop_at = [], stop_at

  def record(self, step, scalars):
    self.recorded.append(step)

  def __call__(self, step):
    return "no decrease" if step == self.stop_at else None


class FakeExporters:
  def __init__(self):
    self.after = []

  def after_eval(self, step, scalars, checkpoint):
    self.after.append((step, checkpoint))


class FakeProgress:
  def __init__(self):
    self.updates, self.evals = [], []

  def update(self, step, loss, *, log):
    self.updates.append((step, loss, log))

  def eval(self, step, scalars):
    self.evals.append(step)


def evaluate_action(*, clock=None, every_steps=None, every_secs=None, save=None, results=None,
                    on_evaluation=None, is_chief=True, total_steps=100):  # fmt: skip
  """The evaluation action as schedule.py builds it, on train.validation_steps / validation_secs."""
  passes = []

  def run_pass():
    passes.append(True)
    return results if results is not None else {"loss": np.float32(0.5)}

  action = schedule.evaluate_action(
    train_section(validation_steps=every_steps, validation_secs=every_secs),
    start_step=0,
    clock=clock or FakeClock(),
    run_pass=run_pass,
    save=save or save_action(every_steps=None),
    writer=FakeWriter(),
    exporters=FakeExporters(),
    early_stopping=FakeEarlyStopping(),
    progress=FakeProgress(),
    total_steps=total_steps,
    on_evaluation=on_evaluation,
    is_chief=is_chief,
  )
  return action, passes


def test_evaluate_every_secs_saves_writes_exports_and_records():
  clock = FakeClock()
  action, passes = evaluate_action(clock=clock, every_secs=60)
  action(loop_record(1, 4))
  clock.now = 61
  action(loop_record(5, 8))
  assert len(passes) == 1 and action.save.saver.saved == [8]  # Eval summaries belong to a checkpoint.
  assert action.writer.written == [(8, {"loss": 0.5})]
  assert action.exporters.after == [(8, "/tmp/model/model.ckpt-8")]
  assert action.early_stopping.recorded == [8] and action.progress.evals == [8]
  assert action.results == {"loss": 0.5} and action.evaluated_step == 8


@pytest.mark.parametrize("validation_secs, evaluated", [(None, [4, 8]), (3600, [])])
def test_evaluate_at_every_checkpoint_when_validation_secs_is_none(validation_secs, evaluated):
  save = save_action(every_steps=4)
  action, passes = evaluate_action(every_secs=validation_secs, save=save)
  for first, last in [(1, 2), (3, 4), (5, 6), (7, 8)]:
    save(loop_record(first, last))
    action(loop_record(first, last))
  assert action.early_stopping.recorded == evaluated


def test_evaluate_only_on_the_chief():
  action, passes = evaluate_action(every_steps=1, is_chief=False)
  action(loop_record(1, 4))
  assert passes == []


def test_evaluate_callback_asks_to_stop_but_not_at_the_last_step():
  seen = []
  action, _ = evaluate_action(
    every_steps=2, total_steps=6, on_evaluation=lambda s, v: seen.append(s) or s >= 4
  )
  action(loop_record(1, 2))
  assert not action.asked_to_stop
  action(loop_record(3, 4))
  assert action.asked_to_stop
  action.evaluate(6)
  assert seen == [2, 4]


def test_evaluate_stopped_by_a_signal_writes_nothing():
  action, _ = evaluate_action(every_steps=1)
  action.run_pass = lambda: None
  assert action.evaluate(3) is False
  assert action.writer.written == [] and action.evaluated_step is None


def test_log_progress_every_loop_with_a_log_line_when_due_and_at_the_end():
  progress = FakeProgress()
  log = LogProgress(progress, trigger=PeriodicTrigger(every_steps=10, clock=FakeClock()))
  for first, last in [(1, 4), (5, 8), (9, 12), (13, 14)]:
    log(loop_record(first, last, total=14))
  assert progress.updates == [(4, 4.0, False), (8, 8.0, False), (12, 12.0, True), (14, 14.0, True)]


def test_stop_early_votes_every_loop_and_stops_all_workers():
  votes = []

  def vote(local):
    votes.append(local)
    return local

  stop = StopEarly(FakeEarlyStopping(stop_at=8), None, vote=vote)
  assert stop(loop_record(1, 4)) is None
  assert stop(loop_record(5, 8)) is StopReason.EARLY_STOPPED
  assert votes == [False, True]
  # Another worker's True (the chief evaluated) stops this one too.
  assert (
    StopEarly(FakeEarlyStopping(), None, vote=lambda local: True)(loop_record(1, 4))
    is StopReason.EARLY_STOPPED
  )


def test_stop_early_on_the_evaluation_callback():
  action, _ = evaluate_action()
  action.asked_to_stop = True
  assert (
    StopEarly(FakeEarlyStopping(), action, vote=lambda local: local)(loop_record(1, 4))
    is StopReason.EARLY_STOPPED
  )


def test_stop_on_signal_when_any_worker_received_one():
  assert StopOnSignal(lambda: False, vote=lambda local: local)(loop_record(1, 4)) is None
  assert StopOnSignal(lambda: True, vote=lambda local: local)(loop_record(1, 4)) is StopReason.PREEMPTED
  assert StopOnSignal(lambda: False, vote=lambda local: True)(loop_record(1, 4)) is StopReason.PREEMPTED


def test_roll_back_restores_weights_not_the_input_position():
  save = save_action(FakeSaver(latest="/tmp/model/model.ckpt-4"), step=4)
  rollback = RollBack(save, policy="rollback", max_rollbacks=1, num_workers=1)
  bad = loop_record(5, 8, loss=[1.0, np.nan, 1.0, 1.0], finite=[True, False, True, True])
  assert rollback(bad) is StopReason.ROLLED_BACK
  assert save.saver.restored == [("/tmp/model/model.ckpt-4", ["w", "global_step"])]
  with pytest.raises(
    NonFiniteLossError, match=r"^loss is nan at step 6 \(steps 5\.\.8\); the last checkpoint \(step 4\)"
  ):
    rollback(bad)  # Its one rollback is spent.


@pytest.mark.parametrize("policy, workers", [("stop", 1), ("rollback", 2)])
def test_roll_back_refused_names_the_fix(policy, workers):
  save = save_action(FakeSaver(latest="/tmp/model/model.ckpt-4"), step=4)
  rollback = RollBack(save, policy=policy, max_rollbacks=3, num_workers=workers)
  bad = loop_record(5, 6, loss=[1.0, 2.0], finite=[True, False])
  with pytest.raises(
    NonFiniteLossError, match=r"a gradient is NaN or Inf at step 6 .*train.nan_policy 'rollback'"
  ):
    rollback(bad)
  assert save.saver.restored == []


def test_the_schedules_order_lets_each_action_see_this_loops_work():
  """Evaluation follows the checkpoint it belongs to; the early-stopping vote hears this loop's callback."""
  save = save_action(every_steps=4)
  evaluate, _ = evaluate_action(save=save, on_evaluation=lambda step, scalars: True)
  writer, progress = FakeWriter(), FakeProgress()
  actions = schedule.ordered_actions(
    train_section(save_summary_steps=2, log_step_count_steps=4),
    save=save,
    evaluate=evaluate,
    writer=writer,
    progress=progress,
    early_stopping=FakeEarlyStopping(),
    stop_requested=lambda: False,
    vote=lambda local: local,
    start_step=0,
    clock=FakeClock(),
  )
  assert [type(action) for action in actions] == [
    WriteSummaries, SaveCheckpoint, Evaluate, LogProgress, StopEarly, StopOnSignal
  ]  # fmt: skip
  reasons = [action(loop_record(1, 4)) for action in actions]
  assert save.saver.saved == [4] and evaluate.early_stopping.recorded == [4]
  assert reasons == [None, None, None, None, StopReason.EARLY_STOPPED, None]
  assert [step for step, _ in writer.written] == [2, 4] and progress.updates == [(4, 4.0, True)]

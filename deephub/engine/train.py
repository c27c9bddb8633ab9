"""train_and_evaluate: the wiring of one training run; what tests, benchmarks and the CLI call.

Where to look: the outer loop is controller.py, the compiled step steps.py,
the periodic work actions.py (built from the config in schedule.py), the
data inputs.py (over deephub/io/feeder.py's Protocol), what is trained and
checkpointed state.py (the checkpoint format: checkpoint.py).
"""

import time
from collections.abc import Callable

import keras
import ml_collections

from deephub.config import variants
from deephub.engine import distribute, model_dir_lock, precision, preemption, state, steps
from deephub.engine.controller import Controller, StopReason
from deephub.engine.inputs import explained_data_loss, prepare_inputs
from deephub.engine.schedule import Schedule, TrainResult, check_config
from deephub.engine.xla_policy import use_xla
from deephub.io.distributed import distributed_dataset
from deephub.io.feeder import Feeder


@preemption.handles_sigterm
def train_and_evaluate(
  config: ml_collections.ConfigDict,
  *,
  train_feeder: Feeder | None = None,
  eval_feeder: Feeder | None = None,
  clock: Callable[[], float] = time.monotonic,
  on_evaluation: Callable[[int, dict], bool] | None = None,
) -> TrainResult:
  """Trains `config` into `config.model.model_dir`, resuming from its newest readable checkpoint.

  Args:
    config: a resolved variant config (model / train / runtime).
    train_feeder, eval_feeder: Feeder objects that replace the configured
      `train.train_feeder` / `train.eval_feeder`.
    clock: seconds for time-based periods; injectable for tests.
    on_evaluation: see actions.EvaluationCallback (True stops training there).

  Returns:
    The final evaluation's scalars ({} without eval data); `.stop_reason`
    and `.stop_signal` tell whether a stop signal preempted training.

  Raises:
    UserError: invalid config or data, another trainer holds model_dir, or
      model_dir holds checkpoints of which none reads.
    NonFiniteLossError: the loss or a gradient became NaN or Inf.
  """
  check_config(config)
  train, runtime, model_dir = config.train, config.runtime, config.model.model_dir
  placement = distribute.make_placement(runtime)  # First: it may configure the TF runtime.
  with model_dir_lock.hold(model_dir, chief=placement.is_chief):  # Until the last file is written.
    precision.set_policy(runtime.mixed_precision)
    keras.utils.set_random_seed(runtime.seed)
    if placement.is_chief:  # Only the chief writes into model_dir.
      variants.write_resolved_config(config, model_dir)
    inputs = prepare_inputs(config, train_feeder=train_feeder, eval_feeder=eval_feeder)
    # Repeated forever: the step count, not the data, ends training. Built
    # before the model, which takes its shapes from the built pipeline.
    where, built = "train.train_feeder", []
    batches = distributed_dataset(
      inputs.train, placement.strategy, data_service=runtime.data_service, where=where, on_built=built.append
    )
    feature_specs = built[0].element_spec[0] if built else None
    trained = state.build_train_state(config, placement, inputs.train, feature_specs=feature_specs)
    iterator = iter(batches)
    if train.checkpoint_input_state:
      trained.add_input_state(iterator)
    saver = state.resume(config, trained, is_chief=placement.is_chief)
    schedule = Schedule(config, trained, saver, inputs, placement, clock=clock, on_evaluation=on_evaluation)
    controller = Controller(
      train_loop=_train_loop(config, trained, placement),
      global_step=trained.global_step,
      steps_per_loop=train.steps_per_loop,
      actions=schedule.actions,
      clock=clock,
      on_non_finite=schedule.rollback,
    )
    if schedule.save.saved_step is None:
      schedule.save.save(trained.step)  # Like an Estimator: model.ckpt-0, the state to roll back to.
    with explained_data_loss(inputs.train, where, on_error=schedule.save.save_progress), schedule.progress:
      outcome = controller.train(iterator, schedule.total_steps)
      while outcome.stop_reason is StopReason.ROLLED_BACK:  # On from the restored checkpoint.
        outcome = controller.train(iterator, schedule.total_steps)
    return schedule.finish(outcome)


def _train_loop(config: ml_collections.ConfigDict, trained: state.TrainState, placement) -> Callable:
  """The compiled inner loop (steps.py) for this config and placement."""
  runtime, autograph = config.runtime, config.runtime.autograph
  train_loop = steps.make_train_loop(
    trained.model,
    trained.optimizer,
    trained.global_step,
    xla=use_xla(runtime) and placement.xla_ok,
    autograph=autograph,
    strategy=placement.strategy,
    summary_steps=config.train.save_summary_steps,
  )
  return steps.explain_python_control_flow(
    train_loop, model_type=config.model.type, autograph=runtime.autograph
  )

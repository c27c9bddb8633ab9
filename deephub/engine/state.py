"""What training trains and checkpoints: `TrainState`, built in one place by `build_train_state`.

The checkpoint's keys (its format: see checkpoint.py and ESTIMATOR.md) are
assembled here and nowhere else:
- each model variable under its TF1 name (`toy/w1`);
- the optimizer's slots and scalars under TF1 names (`toy/w1/Adam`,
  `beta1_power`), the loss scale under float16 (precision.py);
- `global_step`, the Estimator's int64 step counter;
- the train input position (`add_input_state`), in a side bundle.

Training builds the full state. The evaluate / export / predict modes
(modes.py) build it without the optimizer: they restore weights and
global_step only, so a checkpoint without optimizer slots restores too.
"""

import contextlib
import dataclasses

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from deephub.engine import precision
from deephub.engine.checkpoint import CheckpointSaver, Entry, variable_entry
from deephub.engine.distribute import Placement
from deephub.engine.input_state import INPUT_STATE_KEY, iterator_entry
from deephub.engine.warm_start import warm_start
from deephub.io.feeder import Feeder
from deephub.models import build_model
from deephub.models.base import Model, check_dense_features


@dataclasses.dataclass
class TrainState:
  """The model, its optimizer, the step counter and the checkpoint entries over them."""

  model: Model
  # None in the modes that only run the model (evaluate, export, predict).
  optimizer: keras.optimizers.Optimizer | None
  global_step: tf.Variable
  # Checkpoint key -> Entry; CheckpointSaver saves and restores exactly these.
  entries: dict[str, Entry]

  @property
  def step(self) -> int:
    """The global step now (a host sync: the value of a device variable)."""
    return int(self.global_step.numpy())

  def add_input_state(self, iterator) -> None:
    """Checkpoints `iterator`'s position too, when its pipeline can be saved (input_state.py)."""
    entry = iterator_entry(iterator)
    if entry is not None:
      self.entries[INPUT_STATE_KEY] = entry


def build_train_state(
  config: ml_collections.ConfigDict,
  placement: Placement | None,
  feeder: Feeder | None,
  *,
  feature_specs=None,
  with_optimizer: bool = True,
) -> TrainState:
  """Builds the model (and optimizer) of `config` and the checkpoint entries over them.

  Args:
    config: the variant config (`model` section; `runtime.mixed_precision`).
    placement: where training runs; variables are created under its strategy
      (mirrored on every replica). None: the default strategy (the modes).
    feeder: the train data: its names become the model's inputs and labels,
      and its batches' shapes build input-shaped variables (MLPClassifier,
      SmallCNN) before the optimizer. None: the names of
      `config.train.train_feeder`'s maps (the modes, which have no train data).
    feature_specs: batched feature specs to build the model from: the train
      pipeline's when it is built already, else those of the data a mode
      runs on. None with a feeder: taken from a pass of the feeder; None
      without one builds nothing up front.
    with_optimizer: build the optimizer and checkpoint its state; False for
      the modes, which restore weights and global_step only.

  Returns:
    The state; `global_step` is 0 until a checkpoint is restored into it.

  Raises:
    UserError: a model param is invalid, or the data does not fit the model.
  """
  if feeder is not None:
    feature_names, label_names = feeder.feature_names, feeder.label_names
  else:
    feeder_config = config.train.train_feeder
    feature_names, label_names = list(feeder_config.features_map), list(feeder_config.labels_map)
  scope = placement.strategy.scope() if placement is not None else contextlib.nullcontext()
  with scope:  # Variables are mirrored on every replica.
    model = build_model(config.model, feature_names=feature_names, label_names=label_names)
    if feeder is not None:
      if feature_specs is None:
        feature_specs = feeder.dataset(epochs=1).element_spec[0]
      check_dense_features(model, feature_specs, where="train.train_feeder")
    if feature_specs is not None:
      model.build(feature_specs)  # Input-shaped variables, before the optimizer.
    optimizer = None
    if with_optimizer:
      optimizer = precision.wrap_optimizer(model.optimizer(), config.runtime.mixed_precision)
      optimizer.build(model.trainable_variables)
    global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
  variables = model.named_variables()
  entries = {name: variable_entry(v) for name, v in variables.items()}
  if optimizer is not None:
    entries.update(precision.optimizer_state_entries(optimizer, variables))
  # The Estimator's step counter; int64 scalar under its TF1 name.
  entries["global_step"] = variable_entry(global_step)
  return TrainState(model=model, optimizer=optimizer, global_step=global_step, entries=entries)


def resume(config: ml_collections.ConfigDict, state: TrainState, *, is_chief: bool) -> CheckpointSaver:
  """Restores the newest readable checkpoint of model_dir into `state`, else warm-starts it.

  Resume order: the newest checkpoint in model_dir that reads (weights,
  optimizer state, global_step, input position), passing over damaged ones
  (checkpoint.py); else, in a fresh model_dir only (as in Estimator),
  `train.warm_start_check_point`. Training then continues from that step.

  Returns:
    The saver of model_dir over `state.entries`.

  Raises:
    UserError: model_dir holds checkpoints of which none reads, or the warm
      start checkpoint does not fit.
  """
  train = config.train
  saver = CheckpointSaver(
    config.model.model_dir, state.entries, keep_checkpoint_max=train.keep_checkpoint_max
  )
  if is_chief:
    saver.remove_partial_saves()
  latest = saver.restore_newest(what="resume")
  if latest:
    logging.info("Resuming from %s at global_step %d", latest, state.step)
  else:
    warm_start(train, state.model.named_variables())
  return saver

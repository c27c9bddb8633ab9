"""The modes that use a trained model_dir without training: evaluate, export, predict.

Each restores the newest checkpoint of `config.model.model_dir` that reads
into the model (weights and global_step only; optimizer state is not
needed), passing over damaged ones with a warning, and takes no lock: it can
run beside a trainer writing into the same model_dir. Each is
a plain function, so `python -m deephub.train --mode=...`, the `deep` CLI
and tests call the same code.
"""

import json
import os
from collections.abc import Iterator, Mapping

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from deephub.engine import preemption
from deephub.engine.checkpoint import CheckpointSaver
from deephub.engine.inputs import explained_data_loss
from deephub.engine.serving import ServingModule, model_input_specs, write_saved_model
from deephub.engine.serving_inputs import serving_inputs
from deephub.engine.state import build_train_state
from deephub.engine.steps import make_evaluate
from deephub.engine.summaries import ScalarWriter
from deephub.errors import Interrupted, UserError
from deephub.io import make_feeder
from deephub.io.feeder import Feeder
from deephub.models.base import Model, check_dense_features

# Export folder of `export(config)`: model_dir/export/<this>/<unix seconds>/.
MANUAL_EXPORT_NAME = "manual"


def restore_trained(
  config: ml_collections.ConfigDict, feature_specs=None, *, train_feeder: Feeder | None = None
) -> tuple[Model, int]:
  """Builds the model and restores the newest checkpoint of model_dir into it.

  Args:
    config: the variant config.
    feature_specs: the batched feature specs of the data to run on; models
      whose variables depend on the input shapes (MLPClassifier, SmallCNN)
      create them from these before the restore, or nothing would be restored.
    train_feeder: the feeder object the model was trained on, whose feature
      and label names it takes; None: the names of `train.train_feeder`'s maps.

  Returns:
    The model and the checkpoint's global step.

  Raises:
    UserError: model_dir is unset or holds no checkpoint.
  """
  model_dir = config.model.model_dir
  if not model_dir:
    raise UserError("model.model_dir is empty; set it to a trained model_dir")
  # Weights and global_step only: the optimizer state is not needed to run the model.
  state = build_train_state(config, None, train_feeder, feature_specs=feature_specs, with_optimizer=False)
  saver = CheckpointSaver(model_dir, state.entries)
  latest = saver.restore_newest(what="restore")
  if latest is None:
    raise UserError(
      f"model_dir {model_dir} holds no checkpoint; train the variant first or fix model.model_dir"
    )
  logging.info("Restored %s (global_step %d)", latest, state.step)
  return state.model, state.step


@preemption.handles_sigterm
def evaluate(config: ml_collections.ConfigDict) -> dict[str, float]:
  """Evaluates the newest checkpoint on `train.eval_feeder` and writes the scalars to `eval/`.

  SIGTERM or Ctrl-C stops the pass between chunks of batches, with nothing written.

  Returns:
    `loss` and the model's metrics, means over one pass, plus `global_step`.

  Raises:
    UserError: no checkpoint, or no eval feeder files.
    Interrupted: a stop signal ended the pass early.
  """
  if not config.train.eval_feeder.file_patterns:
    raise UserError("train.eval_feeder.file_patterns is empty; set it to the files to evaluate on")
  feeder = make_feeder(config.train.eval_feeder, where="train.eval_feeder")
  model, step = restore_trained(config, feeder.dataset(epochs=1).element_spec[0])
  evaluator = make_evaluate(model, batches_per_call=config.train.steps_per_loop)
  results = evaluator(feeder.dataset(epochs=1), should_stop=preemption.requested)
  if results is None:
    raise Interrupted(preemption.received_signal())
  scalars = {k: float(v) for k, v in results.items()}
  writer = ScalarWriter(os.path.join(config.model.model_dir, "eval"))
  writer.write_scalars(step, scalars)
  writer.close()
  logging.info("Eval at step %d: %s", step, ", ".join(f"{k} = {v:.5g}" for k, v in scalars.items()))
  return {**scalars, "global_step": float(step)}


def export(
  config: ml_collections.ConfigDict, export_dir_base: str | None = None, *, train_feeder: Feeder | None = None
) -> str:
  """Exports the newest checkpoint as a SavedModel (signatures in serving.py).

  Args:
    config: the variant config; `train.train_feeder.features_map` gives the inputs.
    export_dir_base: folder for `<unix seconds>/`; default
      `model_dir/export/manual`.
    train_feeder: the feeder object the model was trained on (in-memory
      data); its features are the inputs when the features_map does not name
      them, as in the exporters of `deephub.train_and_evaluate`.

  Returns:
    The export folder.

  Raises:
    UserError: no checkpoint, or no features to serve (an empty features_map
      and no train_feeder).
  """
  inputs = serving_inputs(config.train.train_feeder.features_map, train_feeder)
  # Built from the serving inputs' shapes before the restore: no data to take them from here.
  specs = model_input_specs(inputs.features_map, inputs.dtypes)
  if train_feeder is not None:  # The model takes the feeder's features, not a longer map's extra entries.
    specs = {name: specs[name] for name in train_feeder.feature_names}
  model, step = restore_trained(config, specs, train_feeder=train_feeder)
  base = export_dir_base or os.path.join(config.model.model_dir, "export", MANUAL_EXPORT_NAME)
  path = write_saved_model(ServingModule(model, inputs.features_map, dtypes=inputs.dtypes), base)
  logging.info("Exported step %d to %s", step, path)
  return path


def predict(config: ml_collections.ConfigDict, output_path: str) -> int:
  """Writes the predictions for every example of the predict feeder as JSON lines.

  The feeder is `train.predict_feeder`, or `train.eval_feeder` when that has
  no file_patterns; it is read once, in file order (never shuffled), so line
  N belongs to example N. Each line is one JSON object, e.g.
  `{"classes": 3, "probabilities": [...]}`.

  Args:
    config: the variant config.
    output_path: the JSON-lines file to write (folders are created).

  Returns:
    The number of examples predicted.
  """
  train = config.train
  key = "train.predict_feeder" if train.predict_feeder.file_patterns else "train.eval_feeder"
  section = train.predict_feeder if train.predict_feeder.file_patterns else train.eval_feeder
  if not section.file_patterns:
    raise UserError(
      "train.predict_feeder.file_patterns and train.eval_feeder.file_patterns are empty; set one"
    )
  # Predicting needs the features only: unlabelled data must not fail on a missing label.
  section = ml_collections.ConfigDict({**section.to_dict(), "labels_map": {}})
  feeder = make_feeder({**section.to_dict(), "shuffle": False}, where=key)
  spec = feeder.dataset(epochs=1).element_spec
  model, _ = restore_trained(config, spec[0] if isinstance(spec, tuple) else spec)

  @tf.function
  def predict_batch(features):
    return model.predictions(model(features, training=False))

  check_dense_features(model, feeder.dataset(epochs=1).element_spec, where=key)
  tf.io.gfile.makedirs(os.path.dirname(os.path.abspath(output_path)))
  # Written beside and renamed at the end, so a failed run leaves an earlier
  # predictions file whole.
  partial = f"{output_path}.partial"
  count = 0
  try:
    with tf.io.gfile.GFile(partial, "w") as f:
      for features in _input_batches(feeder, key):
        outputs = {name: value.numpy() for name, value in predict_batch(features).items()}
        for row in _rows(outputs):
          f.write(json.dumps(row) + "\n")
          count += 1
  except BaseException:
    if tf.io.gfile.exists(partial):
      tf.io.gfile.remove(partial)
    raise
  tf.io.gfile.rename(partial, output_path, overwrite=True)
  logging.info("Wrote %d predictions to %s", count, output_path)
  return count


def _input_batches(feeder, where: str) -> Iterator[dict[str, tf.Tensor]]:
  """The feeder's feature batches; a corrupted or unparsable record becomes a one-line UserError.

  Only fetching a batch is guarded, so an error of the model is not taken
  for one of the data.

  Raises:
    UserError: naming the file and byte offset of a corrupted record, or the
      record that is not a tf.Example or lacks a feature.
  """
  batches = iter(feeder.dataset(epochs=1))
  while True:
    try:
      with explained_data_loss(feeder, where):
        batch = next(batches, None)
    # UnicodeDecodeError: TensorFlow failed to format a parse error that
    # quotes a record's non-UTF-8 bytes.
    except (tf.errors.InvalidArgumentError, UnicodeDecodeError) as error:
      if not hasattr(feeder, "explain_parse_error"):
        raise
      raise feeder.explain_parse_error(error, where) from None
    if batch is None:
      return
    yield batch


def _rows(outputs: Mapping[str, np.ndarray]) -> list[dict]:
  """Splits a batch of prediction arrays into one JSON-ready dict per example."""
  size = len(next(iter(outputs.values())))
  return [{name: _plain(values[i]) for name, values in outputs.items()} for i in range(size)]


def _plain(value: np.ndarray):
  value = np.asarray(value)
  if value.dtype.kind in "SO":
    return value.astype(str).tolist()
  return value.tolist()

"""The eval scalars a variant reports, found by tracing its model once, without training.

The tune file's `metric` must be one of them; finding out before the first
trial costs one model build and one trace instead of a whole failed trial.
"""

import ml_collections
import tensorflow as tf

from deephub.engine.precision import float32_outputs
from deephub.errors import UserError
from deephub.io import make_feeder
from deephub.models import build_model


def eval_scalar_names(config: ml_collections.ConfigDict) -> list[str]:
  """`loss` plus the names of the model's `eval_metrics`, as each evaluation reports them.

  Raises:
    UserError: the variant has no eval feeder (nothing to report), or a bad config.
  """
  train = config.train
  if not train.eval_feeder.file_patterns:
    raise UserError(
      "train.eval_feeder.file_patterns is empty: hyperparameter search needs evaluations to compare "
      "trials; set it in fixed_params"
    )
  feeder = make_feeder(train.eval_feeder, where="train.eval_feeder")
  features_spec, labels_spec = feeder.dataset(epochs=1).element_spec
  model = build_model(config.model, feature_names=feeder.feature_names, label_names=feeder.label_names)
  model.build(features_spec)

  def metrics(features, labels):
    return model.eval_metrics(labels, float32_outputs(model(features, training=False)))

  # Traced symbolically: no data is read and no step runs.
  names = tf.function(metrics).get_concrete_function(features_spec, labels_spec).structured_outputs
  return ["loss", *sorted(names)]

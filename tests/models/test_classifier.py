"""Classifier: every shipped classifier takes the learning-rate schedules; params are found up the classes."""

import pytest
import tensorflow as tf

from deephub import variants
from deephub.engine import train_and_evaluate
from deephub.errors import UserError
from deephub.models import build_model, model_parameters
from deephub.models.classifier import Classifier
from deephub.models.registry.cnn import SmallCNN
from deephub.models.registry.mlp import MLPClassifier
from deephub.models.registry.text_classifier import EmbeddingClassifier
from deephub.models.registry.toy import DebugToyModel
from tests.conftest import read_scalars

# The params each classifier needs besides num_classes and learning_rate.
OWN_PARAMS = {
  "toy:DebugToyModel": {"hidden_neurons": 4},
  "mlp:MLPClassifier": {"hidden_units": [4]},
  "cnn:SmallCNN": {"filters": [2]},
  "text_classifier:EmbeddingClassifier": {"vocab_size": 5},
}
PIECEWISE = {"piecewise_lr_boundaries": [2], "piecewise_lr_values": [0.1, 0.01]}


def _build(model_type, **params):
  config = {"type": model_type, "num_classes": 3, "learning_rate": 0.5, **OWN_PARAMS[model_type], **params}
  return build_model(config, feature_names=["x"], label_names=["y"])


@pytest.mark.parametrize("model_type", sorted(OWN_PARAMS))
def test_every_classifier_takes_a_schedule(model_type):
  model = _build(model_type, **PIECEWISE)
  assert isinstance(model, Classifier)
  optimizer = model.optimizer()
  # Keras evaluates the schedule at the optimizer's update count.
  assert float(optimizer.learning_rate) == pytest.approx(0.1)
  optimizer.iterations.assign(3)
  assert float(optimizer.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("model_type", sorted(OWN_PARAMS))
def test_every_classifier_checks_its_schedule(model_type):
  with pytest.raises(UserError, match=r"cyclical cosine learning-rate schedule also needs model.max_lr"):
    _build(model_type, min_lr=0.1)


@pytest.mark.parametrize("model_class", [DebugToyModel, MLPClassifier, SmallCNN, EmbeddingClassifier])
def test_params_include_the_base_classifier_ones(model_class):
  parameters = model_parameters(model_class)
  assert {"num_classes", "learning_rate", "num_steps_per_decay", "piecewise_lr_values", "min_lr"} <= set(
    parameters
  )
  assert not {"feature_names", "label_names", "params", "names"} & set(parameters)


def test_a_misspelt_base_param_gets_the_closest_name():
  with pytest.raises(UserError, match=r"model.piecewise_lr_value is not a parameter.*'piecewise_lr_values'"):
    _build("mlp:MLPClassifier", piecewise_lr_value=[0.1])


def test_a_missing_base_param_is_required():
  with pytest.raises(UserError, match=r"model.num_classes is required by mlp:MLPClassifier"):
    build_model(
      {"type": "mlp:MLPClassifier", "hidden_units": [4], "learning_rate": 0.1},
      feature_names=["x"],
      label_names=["y"],
    )


def test_mlp_trains_on_its_schedule(tmp_path):
  # MLPClassifier used to skip the base constructor and so lost any schedule.
  config = variants.load_variant("mlp")
  config.model.model_dir = str(tmp_path / "model")
  with config.unlocked():
    config.model.piecewise_lr_boundaries = [3]
    config.model.piecewise_lr_values = [0.1, 0.01]
  config.train.epochs = 6
  config.train.steps_per_loop = 4
  config.train.save_summary_steps = 1
  train_and_evaluate(config)
  logged = read_scalars(config.model.model_dir)["learning_rate"]
  # Global step s logs the rate of its own update, made at optimizer step s - 1.
  assert logged == pytest.approx({1: 0.1, 2: 0.1, 3: 0.1, 4: 0.1, 5: 0.01, 6: 0.01})
  assert tf.train.load_checkpoint(config.model.model_dir).get_tensor("global_step") == 6


EXPONENTIAL = {"num_steps_per_decay": 10, "learning_rate_decay_factor": 0.5}


@pytest.mark.parametrize(
  "model_type, params, expected_at_step_5",
  [
    # The Estimator-era toy model hard-coded staircase=True: no decay before step 10.
    ("toy:DebugToyModel", {}, 0.5),
    ("toy:DebugToyModel", {"staircase": False}, 0.5 * 0.5**0.5),
    # The other classifiers decay smoothly unless asked.
    ("mlp:MLPClassifier", {}, 0.5 * 0.5**0.5),
    ("mlp:MLPClassifier", {"staircase": True}, 0.5),
    ("cnn:SmallCNN", {}, 0.5 * 0.5**0.5),
  ],
)
def test_staircase_defaults_to_true_for_the_toy_model_only(model_type, params, expected_at_step_5):
  optimizer = _build(model_type, **EXPONENTIAL, **params).optimizer()
  optimizer.iterations.assign(5)
  assert float(optimizer.learning_rate) == pytest.approx(expected_at_step_5)
  optimizer.iterations.assign(10)
  assert float(optimizer.learning_rate) == pytest.approx(0.25)

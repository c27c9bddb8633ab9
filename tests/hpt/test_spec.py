"""The tune file: accepted layouts, and a one-line error for each bad input, before any trial."""

import pytest

from deephub.config import variants
from deephub.errors import UserError
from deephub.hpt import spec
from tests.hpt.conftest import BASE_TUNE, write_tune


def _load_and_check(path):
  tune = spec.load(path)
  spec.check_against(tune, variants.load_variant(tune.variant, tune.variants_dir))
  return tune


def test_base_tune_file_reads_as_written(tmp_path):
  tune = _load_and_check(write_tune(tmp_path / "sweep.yaml"))
  assert (tune.goal, tune.metric, tune.max_trials, tune.variant, tune.study_name) == (
    "MINIMIZE", "loss", 6, "toy", "sweep",
  )  # fmt: skip
  learning_rate, hidden, epochs = tune.params
  assert (learning_rate.low, learning_rate.high, learning_rate.log) == (1e-3, 0.3, True)
  assert hidden.choices == (8, 16)
  assert (epochs.is_constant, epochs.constant) == (True, 3)


def test_old_fixed_sections_get_their_prefix(tmp_path):
  path = write_tune(
    tmp_path / "t.yaml",
    fixed_model_params={"num_classes": 50},
    fixed_train_params={"steps_per_loop": 2},
    fixed_params={"train.log_step_count_steps": 7},
  )
  tune = _load_and_check(path)
  assert tune.fixed_params == {
    "model.num_classes": 50, "train.steps_per_loop": 2, "train.log_step_count_steps": 7,
  }  # fmt: skip
  config = spec.trial_config(tune, {"model.learning_rate": 0.01}, "/tmp/x")
  assert (config.model.num_classes, config.train.steps_per_loop, config.model.learning_rate) == (50, 2, 0.01)
  assert config.model.model_dir == "/tmp/x"


PARAMS = BASE_TUNE["params"]


@pytest.mark.parametrize(
  "changes, expected",
  [
    ({"params": {**PARAMS, "model.learnin_rate": {"type": "REAL", "min": 0.1, "max": 1.0}}},
     "unknown config key 'model.learnin_rate'; closest: 'model.learning_rate'"),
    ({"fixed_train_params": {"epoch": 3}}, "unknown config key 'train.epoch'; closest: 'train.epochs'"),
    ({"params": {"model.learning_rate": {"type": "REAL", "min": 0.5, "max": 0.1}}},
     "min 0.5 is above max 0.1"),
    ({"params": {"model.hidden_neurons": {"type": "CATEGORICAL", "choices": []}}},
     "choices must be a non-empty list"),
    ({"params": {"model.learning_rate": {"type": "FLOAT", "min": 0.1, "max": 1.0}}},
     "type is 'FLOAT'; use REAL, INTEGER or CATEGORICAL"),
    ({"params": {"model.learning_rate": {"type": "REAL", "min": 0.0, "max": 1.0, "scale": "LOG"}}},
     "scale LOG needs min above 0"),
    ({"params": {"model.learning_rate": {"type": "REAL", "mni": 0.1, "max": 1.0}}},
     "unknown field 'mni'; closest: 'min'"),
    ({"params": {"model.hidden_neurons": {"type": "CATEGORICAL", "choices": ["wide"]}}},
     "params.model.hidden_neurons: model.hidden_neurons = 'wide' does not fit the field"),
    ({"goal": "LOWER"}, "goal is 'LOWER'; use MINIMIZE or MAXIMIZE"),
    ({"max_trials": 0}, "max_trials is 0; set it to an integer of 1 or more"),
    ({"metrc": "loss"}, "unknown key 'metrc'; closest: 'metric'"),
    ({"metric": None}, "'metric' is missing"),
    ({"pruner": "hyperband"}, "pruner is 'hyperband'; use one of median, none"),
    ({"pruner": "median"}, "evaluates at no fixed steps (train.validation_steps is None)"),
    ({"fixed_params": {"model.model_dir": "/x"}}, "model.model_dir is set per trial"),
    ({"objective": {"type": "MODULE_CALL"}}, "'objective' (MODULE_CALL) is gone"),
    ({"variant": "toyy"}, "Cannot find variant with name 'toyy'"),
  ],
)  # fmt: skip
def test_bad_tune_files_give_one_line(tmp_path, changes, expected):
  with pytest.raises(UserError) as error:
    _load_and_check(write_tune(tmp_path / "t.yaml", **changes))
  message = str(error.value)
  assert expected in message
  assert "\n" not in message


def test_pruner_accepted_with_an_evaluation_cadence(tmp_path):
  path = write_tune(tmp_path / "t.yaml", pruner="median", fixed_params={"train.validation_steps": 1})
  tune = _load_and_check(path)
  assert tune.pruner == "median"


def test_not_yaml_and_not_a_mapping(tmp_path):
  (tmp_path / "a.yaml").write_text("goal: [unclosed")
  (tmp_path / "b.yaml").write_text("- a list")
  with pytest.raises(UserError, match="is not valid YAML"):
    spec.load(str(tmp_path / "a.yaml"))
  with pytest.raises(UserError, match="must be a mapping"):
    spec.load(str(tmp_path / "b.yaml"))

"""Arithmetic over literals in override values (`deephub.config.literals`): the subset and its bounds."""

import pytest

from deephub.config import literals, overrides, variants
from deephub.errors import UserError


@pytest.mark.parametrize(
  "text, expected",
  [
    ("100/5", 20.0),
    ("2**10", 1024),
    ("1e-3*4", 0.004),
    ("-(3+4)", -7),
    ("+5 - -2", 7),
    ("7 // 2 + 7 % 2", 4),
    ('[12, "mixed", 3.0]', [12, "mixed", 3.0]),
    ("[2**3, (1, 2*2)]", [8, (1, 4)]),
    ('{"a": 2**3, 1: None}', {"a": 8, 1: None}),
    ("(True, False, None)", (True, False, None)),
    ("'run-' + 'a'", "run-a"),
    ("2**-1", 0.5),
    ("2**62", 2**62),
  ],
)
def test_evaluates_the_subset(text, expected):
  value = literals.evaluate(text)
  assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
  "text",
  [
    "data/train-*",  # Not valid syntax: a path.
    "adam",  # A name: nothing is looked up.
    "__import__('os').system('false')",
    "().__class__",
    "[x for x in (1, 2)]",
    "{1, 2}",  # A set: not a config value.
    "{**{'a': 1}}",
    "1 if True else 2",
    "1 < 2",
    "1 << 70",
    "1j",
    "1/0",  # Arithmetic that fails is not a value.
    "0**-1",
    "'a' - 1",
    "[1] * 3",
    "'a' * 3",
    "(-8) ** 0.5",  # A complex number.
    "-" * 40 + "1",  # Deeper than the walker goes.
    "1+" * 60_000 + "1",  # Over MAX_SOURCE characters.
  ],
)
def test_text_outside_the_subset_is_not_a_literal(text):
  with pytest.raises(literals.NotALiteral):
    literals.evaluate(text)


@pytest.mark.parametrize(
  "text",
  [
    "9**9**9",
    "2**63",
    "-(2**63)",
    "(-2)**63 // 2",
    "10**18 * 10",
    "2.0**2000",
    "1.5 ** 10**18",
    "1e308 * 10",
    "(2**62) * 4",
  ],  # fmt: skip
)
def test_results_over_the_bounds_are_refused_before_they_are_built(text):
  with pytest.raises(literals.TooLarge):
    literals.evaluate(text)


def test_power_checks_the_size_before_computing():
  # 9**(9**9) would take minutes and hundreds of MB; the check is arithmetic on the exponent.
  with pytest.raises(literals.TooLarge, match=r"9\*\*387420489 is 2\*\*63 or more"):
    literals.power(9, 9**9)
  assert literals.power(-2, 62) == 2**62
  assert literals.power(1, 10**18) == 1 and literals.power(-1, 10**18 + 1) == -1


@pytest.mark.parametrize(
  "text, expected",
  [
    ("100/5", 20.0),
    ("-(3+4)", -7),
    ("[12, 'mixed', 3.0]", [12, "mixed", 3.0]),
    ("1/0", "1/0"),  # Not a value: the text, as any other non-literal.
    ("2024-01-01", "2024-01-01"),
  ],
)
def test_parse_value_computes(text, expected):
  assert overrides.parse_value(text) == expected


def test_parse_value_refuses_a_huge_power_in_one_line():
  refused = r"the value '9\*\*9\*\*9' is refused: 9\*\*387420489 is 2\*\*63 or more"
  with pytest.raises(UserError, match=refused):
    overrides.parse_value("9**9**9")


@pytest.fixture
def config():
  return variants.load_variant("toy")


def test_overrides_compute_and_a_whole_division_fills_an_int(config):
  overrides.apply_overrides(
    config, [("train.epochs", "100/5"), ("model.learning_rate", "1e-3*4"), ("runtime.seed", "-(3+4)")]
  )
  assert (config.train.epochs, config.model.learning_rate, config.runtime.seed) == (20, 0.004, -7)
  assert type(config.train.epochs) is int
  with pytest.raises(UserError, match=r"-p train.epochs '7/2': the field holds int"):
    overrides.apply_overrides(config, [("train.epochs", "7/2")])


def test_param_str_takes_the_text_as_it_is(config):
  overrides.apply_overrides(
    config,
    [
      overrides.Override("train.train_feeder.file_patterns", "['a-*']", plain=True, flag="-P"),
      overrides.Override("model.model_dir", "2**3", plain=True, flag="-P"),
    ],
  )
  assert config.train.train_feeder.file_patterns == ["['a-*']"] and config.model.model_dir == "2**3"
  with pytest.raises(UserError, match=r"-P model.hidden_neurons '5': the field holds int"):
    plain = overrides.Override("model.hidden_neurons", "5", plain=True, flag="-P")
    overrides.apply_overrides(config, [plain])


def test_a_new_model_key_is_added_when_the_model_takes_it(config):
  overrides.apply_overrides(
    config, [("model.num_steps_per_decay", "2*5"), ("model.learning_rate_decay_factor", "0.5")]
  )
  assert config.model.num_steps_per_decay == 10 and config.model.learning_rate_decay_factor == 0.5
  assert config.is_locked  # Still locked for every other key.


@pytest.mark.parametrize(
  "key, message",
  [
    ("model.hidden_neuron", r"unknown config key 'model.hidden_neuron'; closest: 'model.hidden_neurons'"),
    ("model.step_per_decay", r"closest: 'model.num_steps_per_decay'"),  # Suggests the model's parameters too.
    ("model.x.y", r"unknown config key 'model.x.y'"),
    ("train.new_key", r"unknown config key 'train.new_key'; closest: "),
  ],
)
def test_a_new_key_the_model_does_not_take_is_a_typo(config, key, message):
  with pytest.raises(UserError, match=message):
    overrides.apply_overrides(config, [(key, "3")])

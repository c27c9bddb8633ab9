"""The `${...}` / `$(...)` evaluator: the allowed subset, what it refuses, and its bounds."""

import pytest

from deephub.config import yaml_templates
from deephub.config.yaml_templates import TemplateError

ROOT = {
  "train": {"epochs": 3, "files": ["a", "b"], "rate": 0.5, "name": "toy"},
  "deephub_data_dir": "/data",
  "n": "5",
}


def evaluate(text, start="${"):
  return yaml_templates.evaluate(yaml_templates.parse(text, start), ROOT, resolve=lambda value: value)


@pytest.mark.parametrize(
  "text, expected",
  [
    ("${train.epochs}", 3),
    ("${ train['epochs'] }", 3),
    ("${train.files[-1]}", "b"),
    ("${train}", ROOT["train"]),  # Alone, a template keeps the value's type.
    ("${train.epochs * 2 + 1}", 7),
    ("${train.epochs / 2}", 1.5),
    ("${train.epochs // 2 - -1}", 2),
    ("${train.epochs % 2}", 1),
    ("${train.rate * 4}", 2.0),
    ("${'a' + train.name}", "atoy"),
    ("${train.name ~ train.epochs}", "toy3"),
    ("${train.epochs ~ 0}", 30),  # metayaml: text that reads as a number becomes one.
    ("${n}", 5),
    ("${deephub_data_dir}/toy/train-*", "/data/toy/train-*"),
    ("run-${train.epochs}-${train.rate}", "run-3-0.5"),
    ("${true} ${none} ${False}", "True None False"),
    ("${ '}' ~ \"{\" }", "}{"),  # Brackets inside quotes do not close the template.
    ("$(train.files)", ["a", "b"]),
    ("x-$(train.epochs)", "x-3"),
    ("${ '$(' ~ 'train.epochs' ~ ')' }", "$(train.epochs)"),  # A result is data, never evaluated again.
    ("no template", "no template"),
  ],
)
def test_allowed(text, expected):
  start = "$(" if text.startswith(("$(", "x-$(")) else "${"
  assert evaluate(text, start) == expected


@pytest.mark.parametrize(
  "text, reason",
  [
    ("${ cp.__globals__.os.system('touch x') }", "a call is not allowed"),
    ("${ train.__class__ }", "a .key starting with '_' is not allowed"),
    ("${ train|attr('x') }", "that operator is not allowed"),
    ("${ train.epochs > 1 }", "a comparison is not allowed"),
    ("${ train.epochs ** 2 }", "that operator is not allowed"),
    ("${ train.files[0:1] }", "is not allowed"),
    ("${ [1, 2] }", "a List expression is not allowed"),
    ("${ lambda: 1 }", "a Lambda expression is not allowed"),
    ("${ (x := 1) }", "a NamedExpr expression is not allowed"),
    ("${ ~train }", "not valid syntax"),
    ("${ a @ b }", "'@' is not supported"),
    ("{% for x in [1] %}${ x }{% endfor %}", "Jinja statements"),
    ("${ train", "not closed"),
    ("${" + "1+" * 300 + "1}", "over 512 characters"),
    ("${ 1 + }", "not valid syntax"),
    ("${" + "-" * 40 + "1}", "nests deeper than 32 levels"),
  ],
)
def test_refused_before_anything_is_evaluated(text, reason):
  with pytest.raises(TemplateError, match=reason) as error:
    yaml_templates.parse(text, "${")
  assert error.value.refused


@pytest.mark.parametrize(
  "text, reason",
  [
    ("${ nope }", "'nope' is not a key of the config"),
    ("${ train.nope }", "'nope' is not a key of it"),
    ("${ train.files[2] }", "not an index of a list of 2"),
    ("${ train.name.upper }", "cannot look up 'upper' in a str"),
    ("${ train.epochs / 0 }", "division by zero"),
    ("${ 9223372036854775807 + 1 }", "2\\*\\*63 or more"),
    ("${ 1e308 * 10 }", "not finite"),
    ("${ train.name * 3 }", "arithmetic takes numbers, not a str"),
    ("${ train.name + 1 }", "arithmetic takes numbers"),
    ("${ train ~ 1 }", "'~' joins numbers and strings only"),
    ("x${ train }", "a dict cannot be joined into text"),
  ],
)
def test_evaluation_errors(text, reason):
  with pytest.raises(TemplateError, match=reason):
    evaluate(text)


def test_strings_are_bounded():
  root = {"s": "x" * 40_000}
  with pytest.raises(TemplateError, match="over 65536 characters"):
    yaml_templates.evaluate(yaml_templates.parse("${s ~ s}", "${"), root, resolve=lambda value: value)


def test_keys_from_the_file_are_not_echoed():
  with pytest.raises(TemplateError) as error:
    evaluate("${ train['root:$6$secret$hash'] }")
  assert "secret" not in str(error.value) and "a key is not a key" in str(error.value)

"""`deep hpt status`: the trial table, best first, and the command that retrains the best trial."""

import shlex
from typing import Any

import optuna

from deephub.hpt.records import ERROR_ATTR, STEPS_ATTR, trial_dir
from deephub.hpt.spec import TuneSpec


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
  """The best COMPLETE trial, or None when no trial has completed."""
  complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
  return study.best_trial if complete else None


def _value(value: Any) -> str:
  return f"{value:.6g}" if isinstance(value, float) else str(value)


def _row(trial: optuna.trial.FrozenTrial) -> list[str]:
  params = " ".join(f"{key}={_value(value)}" for key, value in sorted(trial.params.items()))
  error = trial.user_attrs.get(ERROR_ATTR)
  return [
    str(trial.number),
    trial.state.name.lower(),
    "" if trial.value is None else _value(trial.value),
    str(trial.user_attrs.get(STEPS_ATTR, "")),
    params + (f"  ({error})" if error else ""),
  ]


def table(study: optuna.Study) -> list[str]:
  """One line per trial (number, state, value, steps, params), the best trial first."""
  best = best_trial(study)
  trials = sorted(
    study.get_trials(deepcopy=False), key=lambda t: (best is None or t.number != best.number, t.number)
  )
  rows = [["trial", "state", "value", "steps", "params"]] + [_row(t) for t in trials]
  widths = [max(len(row[i]) for row in rows) for i in range(4)]
  return [
    "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
    for row in rows
  ]


def _cli_value(value: Any) -> str:
  """`-p` text that `deep trainer train` parses back to `value` (strings are taken as typed)."""
  return value if isinstance(value, str) else repr(value)


def reproduce_command(spec: TuneSpec, trial: optuna.trial.FrozenTrial) -> str:
  """The `deep trainer train` command that trains `trial`'s config again (into runs/<variant>)."""
  words = ["deep", "trainer", "train", spec.variant]
  if spec.variants_dir:
    words += ["-d", spec.variants_dir]
  values = {**spec.fixed_params, **{p.key: p.constant for p in spec.params if p.is_constant}, **trial.params}
  for key, value in values.items():
    words += ["-p", key, _cli_value(value)]
  return " ".join(shlex.quote(word) for word in words)


def report(spec: TuneSpec, study: optuna.Study, study_dir: str) -> list[str]:
  """The table, then the best trial's model_dir and its reproduce command."""
  lines = table(study)
  best = best_trial(study)
  if best is None:
    lines.append("no trial has completed yet")
    return lines
  lines.append(
    f"best: trial {best.number}, {spec.metric} = {_value(best.value)}, in {trial_dir(study_dir, best.number)}"
  )
  lines.append(f"reproduce: {reproduce_command(spec, best)}")
  return lines

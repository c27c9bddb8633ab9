"""Train-step throughput (steps/s, examples/s): deephub's engine against Keras 3 `fit`.

For each benchmark model (toy at batch 10 and 256, the 3x1024 MLP at batch
1024) Keras `fit(jit_compile=True)` runs at several `steps_per_execution`,
once without XLA (for information), then deephub at several `steps_per_loop`,
XLA on and off: rates only. Then, per model, `test_defaults_against_keras`
runs deephub with the variant defaults as resolved on this machine (XLA only
where `use_xla` says so) in rounds paired with Keras at
`steps_per_execution=1`, at the sweep's best value and without XLA, and
with deephub's other XLA choice; its ratios are the medians of the
per-round ratios.

Steady state: one untimed warm-up round traces and compiles; every timed
round then trains `profile.train_steps` steps and ends with the losses
fetched to the host, so all the work is done inside the timed call.
"""

import math

from benchmarks.engines import DeephubEngine, KerasEngine
from benchmarks.report import REPORT, paired_ratio, record, run_paired, store_ratios
from deephub.config import defaults
from deephub.engine.xla_policy import use_xla

_DEFAULTS = defaults.base_config()
_SPL = _DEFAULTS.train.steps_per_loop
# The variant defaults as the engine resolves them on this machine.
_XLA = use_xla(_DEFAULTS.runtime)
DEFAULT = f"deephub_spl{_SPL}_xla{'on' if _XLA else 'off'}"
OTHER_XLA = f"deephub_spl{_SPL}_xla{'off' if _XLA else 'on'}"

# Per model: Keras steps_per_execution values (jit_compile=True), one Keras
# value without XLA (for information: the issue compares against XLA), and
# deephub (steps_per_loop, xla) pairs.
_TOY_DEEPHUB = [(1, True), (10, True), (100, True), (1000, True), (1, False), (100, False)]
CASES = {
  "full": {
    "toy_b10": ([1, 10, 100, 1000], 100, _TOY_DEEPHUB),
    "toy_b256": ([1, 10, 100, 1000], 100, _TOY_DEEPHUB),
    # Compute-bound: per-step overhead is noise next to ~13 GFLOP per step.
    "mlp_b1024": ([1, 10], 1, [(_SPL, True), (_SPL, False)]),
  },
  # CI smoke run: every code path once (Keras with and without XLA, deephub
  # at the defaults and XLA on/off), fewer repeats of the same path.
  "quick": {
    "toy_b10": ([1, 100], 100, [(1, True), (100, True), (100, False)]),
    "toy_b256": ([1], 1, [(100, True), (100, False)]),
    "mlp_b1024": ([1], 1, [(_SPL, True), (_SPL, False)]),
  },
}
# Minimum ratios the issue sets for deephub's defaults.
TARGETS = {
  "toy_b10": {"keras_spe1": 2.0, "best": 1.1},
  "toy_b256": {"keras_spe1": 2.0, "best": 1.1},
  "mlp_b1024": {"best": 1.0},
}


def _case_ids(size: str):
  for model, (keras_values, nojit_value, deephub_values) in CASES[size].items():
    for spe in keras_values:
      yield model, f"keras_spe{spe}"
    yield model, f"kerasnojit_spe{nojit_value}"
    # The default configuration goes last so every alternative is measured before it.
    names = [f"deephub_spl{spl}_xla{'on' if xla else 'off'}" for spl, xla in deephub_values]
    for name in sorted(names, key=lambda n: n == DEFAULT):
      yield model, name


def _engine(model: str, name: str, files: list[str]):
  if name.startswith("keras"):
    kind, spe = name.split("_spe")
    return KerasEngine(model, files, steps_per_execution=int(spe), jit_compile=kind == "keras")
  spl, xla = name.removeprefix("deephub_spl").split("_xla")
  return DeephubEngine(model, files, steps_per_loop=int(spl), xla=xla == "on")


def pytest_generate_tests(metafunc):
  size = metafunc.config.getoption("--bench-size")
  if metafunc.function is test_train_throughput:
    metafunc.parametrize(("model", "name"), list(_case_ids(size)))
  if metafunc.function is test_defaults_against_keras:
    metafunc.parametrize("model", list(CASES[size]))


def test_train_throughput(benchmark, profile, dataset_files, model, name):
  steps = profile.train_steps[model]
  engine = _engine(model, name, dataset_files)
  try:
    benchmark.pedantic(lambda: engine.train(steps), rounds=profile.rounds, warmup_rounds=1, iterations=1)
    assert math.isfinite(engine.last_loss)
  finally:
    engine.close()
  rate = record(benchmark, group=model, name=name, work=steps, unit="steps")
  benchmark.extra_info["examples_per_sec"] = rate * engine.batch_size
  benchmark.extra_info["batch_size"] = engine.batch_size


def test_defaults_against_keras(benchmark, profile, dataset_files, model):
  """deephub's defaults against Keras at spe=1, at its best spe and without XLA, rounds paired."""
  steps = profile.train_steps[model]
  keras_values, nojit_value, _ = CASES[profile.name][model]
  # Keras' best steps_per_execution in this run's sweep above (its largest if the sweep did not run).
  best = REPORT.best(model, "keras_spe")
  best_name = best[0] if best else f"keras_spe{max(keras_values)}"
  # The other XLA choice too: the evidence for `use_xla`'s CPU default.
  names = {"keras_spe1", best_name, f"kerasnojit_spe{nojit_value}", OTHER_XLA}
  engines = {name: _engine(model, name, dataset_files) for name in sorted(names)}
  ours = _engine(model, DEFAULT, dataset_files)
  try:
    seconds = run_paired(
      benchmark,
      lambda: ours.train(steps),
      {name: (lambda e=engine: e.train(steps)) for name, engine in engines.items()},
      rounds=profile.paired_rounds,
    )
  finally:
    for engine in (ours, *engines.values()):
      engine.close()
  targets = TARGETS[model]
  benchmark.extra_info["case"] = DEFAULT
  benchmark.extra_info["steps_per_sec"] = steps / benchmark.stats.stats.min
  benchmark.extra_info["examples_per_sec"] = benchmark.extra_info["steps_per_sec"] * ours.batch_size
  ratios = []
  for name, theirs in seconds.items():
    benchmark.extra_info[f"{name}_steps_per_sec"] = steps / min(theirs)
    value = paired_ratio(benchmark.stats.stats.data, theirs, ours_work=steps, theirs_work=steps)
    applies = {"keras_spe1": name == "keras_spe1", "best": name == best_name}
    wanted = [targets[key] for key, hit in applies.items() if hit and key in targets]
    target = max(wanted) if wanted else None
    ratios.append(REPORT.add_paired_ratio(model, DEFAULT, name, value, target))
  store_ratios(benchmark, ratios)

"""Train-step throughput (steps/s, examples/s): deephub's engine against Keras 3 `fit`.

For each benchmark model (toy at batch 10 and 256, the 3x1024 MLP at batch
1024) Keras `fit(jit_compile=True)` runs at several `steps_per_execution`,
once without XLA (for information), then deephub at several `steps_per_loop`,
XLA on and off. The last case of a model is deephub with the variant
defaults as resolved on this machine (XLA only where `use_xla` says so); it
records the ratios against Keras at `steps_per_execution=1`, at Keras' best
value, and against Keras without XLA.

Steady state: one untimed warm-up round traces and compiles; every timed
round then trains `profile.train_steps` steps and ends with the losses
fetched to the host, so all the work is done inside the timed call.
"""

import math

import pytest

from benchmarks.engines import DeephubEngine, KerasEngine
from benchmarks.report import REPORT, record, store_ratios
from deephub import defaults
from deephub.engine.xla_policy import use_xla

_DEFAULTS = defaults.base_config()
_SPL = _DEFAULTS.train.steps_per_loop
# The variant defaults as the engine resolves them on this machine.
DEFAULT = f"deephub_spl{_SPL}_xla{'on' if use_xla(_DEFAULTS.runtime) else 'off'}"

# Per model: Keras steps_per_execution values (jit_compile=True), one Keras
# value without XLA (for information: the issue compares against XLA), and
# deephub (steps_per_loop, xla) pairs.
_TOY_DEEPHUB = [(1, True), (10, True), (100, True), (1000, True), (1, False), (100, False)]
CASES = {
  "toy_b10": ([1, 10, 100, 1000], 100, _TOY_DEEPHUB),
  "toy_b256": ([1, 10, 100, 1000], 100, _TOY_DEEPHUB),
  # Compute-bound: per-step overhead is noise next to ~13 GFLOP per step.
  "mlp_b1024": ([1, 10], 1, [(_SPL, True), (_SPL, False)]),
}
# Minimum ratios the issue sets for deephub's defaults.
TARGETS = {
  "toy_b10": {"keras_spe1": 2.0, "best": 1.1},
  "toy_b256": {"keras_spe1": 2.0, "best": 1.1},
  "mlp_b1024": {"best": 1.0},
}


def _case_ids():
  for model, (keras_values, nojit_value, deephub_values) in CASES.items():
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


@pytest.mark.parametrize(("model", "name"), list(_case_ids()))
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
  if name != DEFAULT:
    return
  targets = TARGETS[model]
  ratios = []
  if "keras_spe1" in targets:
    ratios.append(REPORT.add_ratio(model, DEFAULT, "keras_spe1", target=targets["keras_spe1"]))
  best = REPORT.best(model, "keras_spe")
  if best is not None:
    benchmark.extra_info["keras_best"] = best[0]
    ratios.append(REPORT.add_ratio(model, DEFAULT, best[0], target=targets["best"]))
  nojit = REPORT.best(model, "kerasnojit_spe")
  if nojit is not None:
    ratios.append(REPORT.add_ratio(model, DEFAULT, nojit[0], target=None))
  store_ratios(benchmark, ratios)

"""MLP compute efficiency: the deephub train step's FLOP/s over the FLOP/s of its matrix products alone.

A train step of the 3x1024 MLP on 32 inputs and 10 classes at batch 1024 is
eleven matrix products: four forward, four weight gradients and three input
gradients (the first layer's input gradient is not needed). The reference
runs exactly these products in a compiled loop, each iteration feeding the
next (so nothing is hoisted out of the loop), with and without XLA; the
faster of the two is the denominator. Both sides count the same FLOPs, so
the efficiency is reference seconds per step over deephub seconds per step.
"""

import pytest
import tensorflow as tf

from benchmarks import synthetic_data
from benchmarks.engines import MODELS, DeephubEngine
from benchmarks.report import REPORT, paired_ratio, record, run_paired, store_ratios
from deephub.config import defaults
from deephub.engine.xla_policy import use_xla

GROUP = "mlp_flops"
_MODEL = "mlp_b1024"


def layer_widths() -> list[int]:
  """Input width, hidden widths, classes of the benchmark MLP."""
  config, _, _ = MODELS[_MODEL]
  return [synthetic_data.DENSE_WIDTH, *config["hidden_units"], config["num_classes"]]


def flops_per_step(batch: int, widths: list[int]) -> int:
  """Multiply-adds x2 of one forward and backward pass (no first-layer input gradient)."""
  layers = list(zip(widths[:-1], widths[1:], strict=True))
  forward = sum(2 * batch * n_in * n_out for n_in, n_out in layers)
  weight_grads = forward
  input_grads = sum(2 * batch * n_in * n_out for n_in, n_out in layers[1:])
  return forward + weight_grads + input_grads


def matmul_loop(batch: int, widths: list[int], *, xla: bool):
  """Returns `run(num_steps)` doing the step's matrix products `num_steps` times."""
  weights = [
    tf.Variable(tf.random.normal([n_in, n_out], stddev=n_in**-0.5))
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
  ]
  x = tf.random.normal([batch, widths[0]])

  @tf.function(jit_compile=xla)
  def step(ws):
    activations = [x]
    for w in ws:
      activations.append(tf.matmul(activations[-1], w))
    grad = activations[-1]
    new_ws = [None] * len(ws)
    for i in reversed(range(len(ws))):
      new_ws[i] = ws[i] - 1e-9 * tf.matmul(activations[i], grad, transpose_a=True)
      if i > 0:
        grad = tf.matmul(grad, ws[i], transpose_b=True)
    return new_ws

  @tf.function
  def run(num_steps):
    ws = [tf.convert_to_tensor(w) for w in weights]
    for _ in tf.range(num_steps):
      ws = step(ws)
    return tf.add_n([tf.reduce_sum(w) for w in ws])

  return run


def _matmul_only(name: str, steps: int):
  _, _, batch = MODELS[_MODEL]
  loop = matmul_loop(batch, layer_widths(), xla=name.endswith("xlaon"))
  return lambda: float(loop(tf.constant(steps)))  # The float() fetch ends the work.


def _deephub_step(files: list[str]) -> DeephubEngine:
  config = defaults.base_config()
  return DeephubEngine(_MODEL, files, steps_per_loop=config.train.steps_per_loop, xla=use_xla(config.runtime))


@pytest.mark.parametrize("name", ["matmul_only_xlaoff", "matmul_only_xlaon"])
def test_matmul_only(benchmark, profile, name):
  _, _, batch = MODELS[_MODEL]
  steps = profile.train_steps[_MODEL]
  benchmark.pedantic(_matmul_only(name, steps), rounds=profile.rounds, warmup_rounds=1, iterations=1)
  rate = record(
    benchmark, group=GROUP, name=name, work=flops_per_step(batch, layer_widths()) * steps, unit="flops"
  )
  benchmark.extra_info["gflops_per_sec"] = rate / 1e9


def test_mlp_compute_efficiency(benchmark, profile, dataset_files):
  """deephub's MLP step in rounds paired with the matrix products alone (XLA on and off)."""
  _, _, batch = MODELS[_MODEL]
  steps = profile.train_steps[_MODEL]
  flops = flops_per_step(batch, layer_widths()) * steps
  engine = _deephub_step(dataset_files)
  names = ("matmul_only_xlaoff", "matmul_only_xlaon")
  try:
    seconds = run_paired(
      benchmark,
      lambda: engine.train(steps),
      {n: _matmul_only(n, steps) for n in names},
      rounds=profile.paired_rounds,
    )
  finally:
    engine.close()
  benchmark.extra_info["gflops_per_sec"] = flops / benchmark.stats.stats.min / 1e9
  efficiency = {
    n: paired_ratio(benchmark.stats.stats.data, seconds[n], ours_work=flops, theirs_work=flops) for n in names
  }
  for name in names:
    benchmark.extra_info[f"{name}_gflops_per_sec"] = flops / min(seconds[name]) / 1e9
  # The faster reference is the denominator, so the lower efficiency counts.
  reference = min(efficiency, key=efficiency.get)
  store_ratios(
    benchmark, [REPORT.add_paired_ratio(GROUP, "deephub_step", reference, efficiency[reference], 0.7)]
  )

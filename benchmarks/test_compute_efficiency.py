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
from benchmarks.report import REPORT, record, store_ratios
from deephub import defaults
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


@pytest.mark.parametrize("name", ["matmul_only_xlaoff", "matmul_only_xlaon", "deephub_step"])
def test_mlp_compute_efficiency(benchmark, profile, dataset_files, name):
  _, _, batch = MODELS[_MODEL]
  widths = layer_widths()
  steps = profile.train_steps[_MODEL]
  flops = flops_per_step(batch, widths) * steps
  if name == "deephub_step":
    config = defaults.base_config()
    engine = DeephubEngine(
      _MODEL, dataset_files, steps_per_loop=config.train.steps_per_loop, xla=use_xla(config.runtime)
    )
    run = lambda: engine.train(steps)  # noqa: E731
  else:
    loop = matmul_loop(batch, widths, xla=name.endswith("xlaon"))
    run = lambda: float(loop(tf.constant(steps)))  # noqa: E731 - the float() fetch ends the work.
  benchmark.pedantic(run, rounds=profile.rounds, warmup_rounds=1, iterations=1)
  rate = record(benchmark, group=GROUP, name=name, work=flops, unit="flops")
  benchmark.extra_info["gflops_per_sec"] = rate / 1e9
  if name == "deephub_step":
    engine.close()
    best = REPORT.best(GROUP, "matmul_only")
    if best is not None:
      store_ratios(benchmark, [REPORT.add_ratio(GROUP, "deephub_step", best[0], target=0.7)])

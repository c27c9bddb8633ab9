"""One fresh process trains one toy step; prints its timings and peak memory as JSON.

  python -m benchmarks.first_step deephub|keras MODEL_DIR

`deephub` runs `train_and_evaluate` on the toy variant for one step (build,
trace, XLA-compile, the step, the final checkpoint; no evaluation). `keras`
builds the same network as a Keras 3 model, compiles it with
`jit_compile=True` and fits one step on the same batch. A fresh process per
run makes the first step really the first (no warm caches) and makes the peak
resident memory (VmHWM) that of this run alone.
"""

import json
import os
import sys
import time


def main(engine: str, model_dir: str) -> dict:
  start = time.perf_counter()
  import keras
  import tensorflow as tf

  from deephub import variants
  from deephub.engine import train_and_evaluate

  imported = time.perf_counter()
  config = variants.load_variant("toy")
  config.model.model_dir = model_dir
  config.train.epochs = 1  # The toy train file is one batch: one step.
  config.train.eval_feeder.file_patterns = []
  if engine == "deephub":
    train_and_evaluate(config)
  else:
    from benchmarks.engines import keras_twin
    from deephub.io import make_feeder

    feeder = make_feeder(config.train.train_feeder, seed=config.runtime.seed)
    model, dataset = keras_twin(config.model.to_dict(), feeder, steps_per_execution=1)
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
  del keras, tf
  done = time.perf_counter()
  return {
    "import_secs": imported - start,
    "first_step_secs": done - imported,
    "peak_rss_mb": peak_rss_mb(),
  }


def peak_rss_mb() -> float:
  """This process's peak resident memory (VmHWM).

  Not `ru_maxrss`: Linux carries it over from the parent through fork and
  exec, so a child of the (large) pytest process would report the parent's.
  """
  with open("/proc/self/status", encoding="ascii") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 1024  # kB
  raise RuntimeError("no VmHWM in /proc/self/status (the benchmark needs Linux)")


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  print(json.dumps(main(sys.argv[1], sys.argv[2])))

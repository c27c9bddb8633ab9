"""One fresh process trains one toy step; prints its timings and peak memory as JSON.

  python -m benchmarks.first_step deephub|keras|keras_plain MODEL_DIR

`deephub` runs the toy variant for one step the way both entry points do,
through `launch.train_variant` (quiet TensorFlow load, build, trace, the
step, the final checkpoint and the closing lines; no evaluation). `keras`
builds the same network as a Keras 3 model around deephub's own layer and
feeder, compiles it with `jit_compile=True` and fits one step on the same
batch. `keras_plain` is what a Keras user writes for the same job: only
`keras` and `tensorflow` imported, the toy TFRecord file read with tf.data,
a two-layer `Sequential` of the toy's shape, `compile` with its defaults
and `fit` of one step.

A fresh process per run makes the first step really the first (no warm
caches) and makes the peak resident memory (VmHWM) that of this run alone.
`start_to_first_step_secs` counts from the process's creation (the kernel's
start time in /proc, so interpreter start-up is included, on one clock for
every engine) to the end of the first step; `start_to_first_step_cpu_secs`
is the CPU time the process used until then.
"""

import json
import os
import sys
import time

_TOY_TRAIN = os.path.join(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
  *("deephub", "resources", "blobs", "data", "toy", "train-00000-of-00001"),
)


def main(engine: str, model_dir: str) -> dict:
  if engine == "keras_plain":
    return plain_keras()
  start = time.perf_counter()
  if engine == "deephub":
    from deephub import console, launch
    from deephub.config import variants

    console.load_tensorflow()  # What train_variant does first; here to time imports apart.
    import deephub.engine  # noqa: F401
  else:
    import keras  # noqa: F401
    import tensorflow as tf  # noqa: F401

    from deephub.config import variants

  imported, imported_cpu = time.perf_counter(), time.process_time()
  config = variants.load_variant("toy")
  config.model.model_dir = model_dir
  config.train.epochs = 1  # The toy train file is one batch: one step.
  config.train.eval_feeder.file_patterns = []
  if engine == "deephub":
    launch.train_variant(config, "toy")
  else:
    from benchmarks.engines import keras_twin
    from deephub.io import make_feeder

    feeder = make_feeder(config.train.train_feeder, seed=config.runtime.seed)
    model, dataset = keras_twin(config.model.to_dict(), feeder, steps_per_execution=1)
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
  done = time.perf_counter()
  return {
    "import_secs": imported - start,
    "import_cpu_secs": imported_cpu,  # From process start, interpreter start-up included.
    "first_step_secs": done - imported,
    "start_to_first_step_secs": since_process_start(),
    # CPU seconds of all threads up to here: less swayed by other jobs than wall time.
    "start_to_first_step_cpu_secs": time.process_time(),
    "peak_rss_mb": peak_rss_mb(),
  }


def plain_keras() -> dict:
  """One step of Keras `fit` on the toy data, written as a Keras user would."""
  start = time.perf_counter()
  import keras
  import tensorflow as tf

  imported, imported_cpu = time.perf_counter(), time.process_time()
  spec = {"number": tf.io.FixedLenFeature([], tf.int64), "label": tf.io.FixedLenFeature([], tf.int64)}

  def parse(records):
    example = tf.io.parse_example(records, spec)
    return tf.cast(example["number"], tf.float32)[:, None], example["label"]

  dataset = tf.data.TFRecordDataset(_TOY_TRAIN).batch(10).map(parse).repeat()
  model = keras.Sequential(
    [
      keras.Input(shape=(1,)),
      keras.layers.Dense(50, activation="relu", kernel_initializer=keras.initializers.Constant(0.01)),
      keras.layers.Dense(100, kernel_initializer=keras.initializers.Constant(0.01)),
    ]
  )
  model.compile(
    optimizer=keras.optimizers.Adam(0.001),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
  )
  model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
  done = time.perf_counter()
  return {
    "import_secs": imported - start,
    "import_cpu_secs": imported_cpu,  # From process start, interpreter start-up included.
    "first_step_secs": done - imported,
    "start_to_first_step_secs": since_process_start(),
    # CPU seconds of all threads up to here: less swayed by other jobs than wall time.
    "start_to_first_step_cpu_secs": time.process_time(),
    "peak_rss_mb": peak_rss_mb(),
  }


def since_process_start() -> float:
  """Seconds since the kernel created this process (fork), so interpreter start-up counts.

  /proc/self/stat's field 22 is the start time in clock ticks since boot, on
  the CLOCK_BOOTTIME clock; the resolution is one tick (10 ms).
  """
  with open("/proc/self/stat", encoding="ascii") as f:
    fields = f.read().rsplit(")", 1)[1].split()  # After "(comm)", which may hold spaces.
  start_ticks = int(fields[19])  # Field 22; fields[0] is field 3.
  return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


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

"""shuffle: 'global' (records read by offset, a full permutation per epoch) against the other modes.

- Feeder: one full pass of the 'global' feeder over the synthetic dataset
  (1M records from the page cache in `full`), batch 256, in rounds paired
  with the unshuffled feeder (target >= 0.7x) and today's buffer shuffle,
  `shuffle: True` (target >= 1.4x). Consumed by `dataset.reduce` in C++, as
  in `test_feeder.py`; the index is built (or loaded) before the warm-up.
- Training: the toy (batch 256) and the MLP (batch 1024) train with the
  'global' feeder in rounds paired with the same engine on the unshuffled
  feeder (target >= 0.9x); deephub's defaults (steps_per_loop 100, XLA per
  `use_xla`).
- CPU: each feeder's process CPU microseconds per record, one pass each
  (no target): on a shared machine, wall-clock ratios also measure how
  many runnable threads each pipeline keeps.
- Index: the build time per GB (one headers-only native scan per file,
  files in parallel, cache bypassed) and the index memory per million
  records (the int64 tensors' bytes), reported without a target.
"""

import time

import pytest
import tensorflow as tf

from benchmarks import synthetic_data
from benchmarks.engines import DeephubEngine
from benchmarks.report import REPORT, paired_ratio, run_paired, store_ratios
from benchmarks.test_feeder import BATCH_SIZE, count_examples, deephub_feeder
from benchmarks.test_train_step import _SPL, _XLA
from deephub.io import record_index

GROUP = "global_shuffle"
FEEDER_TARGETS = {"unshuffled": 0.7, "buffer_shuffled": 1.4}
TRAIN_TARGET = 0.9


def _pass(files: list[str], shuffle: bool | str):
  """A traced function running one full pass of the feeder; returns the examples seen."""
  feeder = deephub_feeder(files, BATCH_SIZE, seed=0, shuffle=shuffle)
  dataset = feeder.dataset(epochs=1)  # Builds (or loads) the record index for 'global'.
  one_pass = tf.function(lambda: count_examples(dataset))
  return lambda: int(one_pass())


def test_global_feeder_against_unshuffled_and_buffer_shuffle(benchmark, profile, dataset_files):
  ours = _pass(dataset_files, "global")
  alternatives = {"unshuffled": _pass(dataset_files, False), "buffer_shuffled": _pass(dataset_files, True)}
  seconds = run_paired(benchmark, ours, alternatives, rounds=profile.paired_rounds)
  work = profile.num_examples
  benchmark.extra_info["examples_per_sec"] = work / benchmark.stats.stats.min
  ratios = []
  for name, target in FEEDER_TARGETS.items():
    benchmark.extra_info[f"{name}_examples_per_sec"] = work / min(seconds[name])
    value = paired_ratio(benchmark.stats.stats.data, seconds[name], ours_work=work, theirs_work=work)
    ratios.append(REPORT.add_paired_ratio(GROUP, "feeder_global", name, value, target))
  # CPU seconds per record, one more pass each: on this shared machine a
  # pipeline's wall time also measures how many threads it keeps runnable.
  for name, run in {"global": ours, **alternatives}.items():
    start = time.process_time()
    run()
    cpu_us = (time.process_time() - start) / work * 1e6
    benchmark.extra_info[f"{name}_cpu_us_per_record"] = cpu_us
    REPORT.add_paired_ratio(GROUP, f"feeder_{name} CPU us/record", "-", cpu_us, None)
  store_ratios(benchmark, ratios)


@pytest.mark.parametrize("model", ["toy_b256", "mlp_b1024"])
def test_training_with_global_against_unshuffled(benchmark, profile, dataset_files, model):
  steps = profile.train_steps[model]
  ours = DeephubEngine(model, dataset_files, steps_per_loop=_SPL, xla=_XLA, shuffle="global")
  theirs = DeephubEngine(model, dataset_files, steps_per_loop=_SPL, xla=_XLA)
  try:
    seconds = run_paired(
      benchmark,
      lambda: ours.train(steps),
      {"unshuffled": lambda: theirs.train(steps)},
      rounds=profile.paired_rounds,
    )
  finally:
    ours.close()
    theirs.close()
  benchmark.extra_info["steps_per_sec"] = steps / benchmark.stats.stats.min
  benchmark.extra_info["unshuffled_steps_per_sec"] = steps / min(seconds["unshuffled"])
  value = paired_ratio(benchmark.stats.stats.data, seconds["unshuffled"], ours_work=steps, theirs_work=steps)
  store_ratios(
    benchmark, [REPORT.add_paired_ratio(GROUP, f"{model}_global", "unshuffled", value, TRAIN_TARGET)]
  )


def test_index_build_time_and_memory(benchmark, profile, dataset_files, monkeypatch):
  """Seconds per GB of a cold index build and bytes per million records (no target)."""
  gigabytes = synthetic_data.read_bytes(dataset_files) / 1e9
  build = lambda: record_index.build(dataset_files, max_index_bytes=1 << 40, where="benchmark")
  build()  # Fills the cache beside the metadata...
  start = time.perf_counter()
  build()  # ...so that this one only loads it.
  benchmark.extra_info["index_cached_load_secs"] = time.perf_counter() - start
  # Cold builds: every file scanned, the cache neither read nor written.
  monkeypatch.setattr(record_index, "_cached_or_scanned", lambda path: record_index._scan(path, False))
  index = benchmark.pedantic(build, rounds=profile.rounds, warmup_rounds=1, iterations=1)
  memory = sum(tensor.numpy().nbytes for tensor in (index.offsets, index.lengths, index.starts))
  # Bytes per record are MB per million records.
  per_million = memory / index.num_records
  benchmark.extra_info["index_build_secs_per_GB"] = benchmark.stats.stats.min / gigabytes
  benchmark.extra_info["index_MB_per_million_records"] = per_million
  benchmark.extra_info["dataset_GB"] = gigabytes
  REPORT.add_paired_ratio(GROUP, "index build s/GB", "-", benchmark.stats.stats.min / gigabytes, None)
  REPORT.add_paired_ratio(GROUP, "index MB/M records", "-", per_million, None)

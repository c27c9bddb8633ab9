"""shuffle: 'global': a full permutation per epoch, read by record offset; record-exact shards."""

import os

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine.input_state import iterator_entry
from deephub.errors import UserError
from deephub.io import metadata
from deephub.io.tfrecord import TFRecordExamplesFeeder
from deephub.resources.make_toy_data import write_shard

_INT = {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}
_CLASSES = 10
# scipy.stats.chi2.ppf(0.999, df=9): a uniform sample exceeds it once in 1000.
_CHI2_CRITICAL_DF9 = 27.877


def _write_sorted(folder, sizes: list[int], compression: str = "") -> None:
  """Files holding the numbers 0..sum(sizes)-1 in order, file after file (so labels come sorted)."""
  start = 0
  for i, size in enumerate(sizes):
    write_shard(os.path.join(folder, f"data-{i}"), range(start, start + size), compression)
    start += size


def _feeder(folder, **overrides) -> TFRecordExamplesFeeder:
  params = dict(
    file_patterns=[os.path.join(folder, "data-*")], batch_size=10, features_map={"number": _INT},
    shuffle="global", seed=7, auto_generate_meta=True,
  )  # fmt: skip
  return TFRecordExamplesFeeder(**{**params, **overrides})


def _numbers(dataset) -> list[int]:
  return [int(n) for batch in dataset for n in batch["number"].numpy()]


def _chi_square(labels: np.ndarray) -> float:
  """Pearson's statistic of `labels` against a uniform spread over the classes."""
  observed = np.bincount(labels, minlength=_CLASSES)
  expected = len(labels) / _CLASSES
  return float(((observed - expected) ** 2 / expected).sum())


def test_first_five_percent_holds_every_label_where_a_small_buffer_does_not(tmp_path):
  total = 4000
  _write_sorted(tmp_path, [1000] * 4)  # Label = number * 10 // 4000: written in label order.
  head = total // 20
  labels = lambda numbers: np.array(numbers[:head]) * _CLASSES // total
  global_numbers = _numbers(_feeder(tmp_path).dataset(epochs=1))
  buffered = _numbers(_feeder(tmp_path, shuffle=True, shuffle_buffer_size=100).dataset(epochs=1))
  assert sorted(global_numbers) == sorted(buffered) == list(range(total))
  assert _chi_square(labels(global_numbers)) < _CHI2_CRITICAL_DF9
  assert _chi_square(labels(buffered)) > _CHI2_CRITICAL_DF9


@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_every_record_once_per_epoch_and_epochs_differ(tmp_path, epochs):
  _write_sorted(tmp_path, [30, 7, 60])  # 97 records: 10 batches, the last short.
  numbers = _numbers(_feeder(tmp_path).dataset(epochs=epochs))
  orders = [numbers[97 * e : 97 * (e + 1)] for e in range(epochs)]
  assert len(numbers) == 97 * epochs
  for order in orders:
    assert sorted(order) == list(range(97))
  assert len({tuple(order) for order in orders}) == epochs
  assert orders[0] != list(range(97))


def test_same_seed_same_order_other_seed_other_order(tmp_path):
  _write_sorted(tmp_path, [50, 50])
  first = _numbers(_feeder(tmp_path).dataset(epochs=2))
  assert _numbers(_feeder(tmp_path).dataset(epochs=2)) == first
  assert _numbers(_feeder(tmp_path, seed=8).dataset(epochs=2)) != first


def test_max_examples_permutes_the_first_records(tmp_path):
  _write_sorted(tmp_path, [40, 40])
  numbers = _numbers(_feeder(tmp_path, max_examples=55).dataset(epochs=1))
  assert sorted(numbers) == list(range(55)) and numbers != list(range(55))


def test_restored_iterator_continues_the_epoch_exactly(tmp_path):
  _write_sorted(tmp_path, [30, 53])  # 9 batches per epoch.
  original = iter(_feeder(tmp_path).dataset())
  before = [next(original)["number"].numpy() for _ in range(12)]  # 3 batches into epoch 2.
  state = iterator_entry(original).read()
  expected = [next(original)["number"].numpy() for _ in range(10)]
  resumed = iter(_feeder(tmp_path).dataset())
  iterator_entry(resumed).assign(state)
  for want, batch in zip(expected, (next(resumed)["number"].numpy() for _ in range(10)), strict=True):
    np.testing.assert_array_equal(batch, want)
  second_epoch = np.concatenate([*before[9:], *expected[:6]])
  assert sorted(second_epoch.tolist()) == list(range(83))


def _pipeline_numbers(feeder, pipelines: int, pipeline: int) -> list[list[int]]:
  """The batches one of `pipelines` input pipelines reads in one pass (one replica each)."""
  context = tf.distribute.InputContext(pipelines, pipeline, pipelines)
  return [batch["number"].numpy().tolist() for batch in feeder.dataset(epochs=1, input_context=context)]


@pytest.mark.parametrize("shuffle", ["global", False])
def test_pipelines_read_every_nth_record_of_the_order(tmp_path, shuffle):
  _write_sorted(tmp_path, [50, 3, 31])  # Files of unequal sizes, 84 records.
  feeder = _feeder(tmp_path, shuffle=shuffle, batch_size=8)
  order = _numbers(feeder.dataset(epochs=1))
  shares = [_pipeline_numbers(feeder, 2, i) for i in range(2)]
  assert [len(share) for share in shares] == [11, 11]  # 42 records each, batches of 4.
  for i, share in enumerate(shares):
    assert sum(share, []) == order[i::2]


@pytest.mark.parametrize("drop_remainder, per_pipeline", [(False, 34), (True, 33)])
def test_uneven_split_reads_equal_shares(tmp_path, drop_remainder, per_pipeline):
  _write_sorted(tmp_path, [60, 40])  # 100 records over 3 pipelines.
  feeder = _feeder(tmp_path, batch_size=3, drop_remainder=drop_remainder)
  shares = [sum(_pipeline_numbers(feeder, 3, i), []) for i in range(3)]
  assert [len(share) for share in shares] == [per_pipeline] * 3
  seen = sum(shares, [])
  assert set(seen) <= set(range(100))
  # Wrapping around reads 2 records twice; dropping leaves 1 out.
  assert len(set(seen)) == (100 if not drop_remainder else 99)


def test_gzip_files_are_refused_naming_the_key(tmp_path):
  _write_sorted(tmp_path, [10], compression="GZIP")
  with pytest.raises(UserError, match=r"^feeder shuffle is 'global'.*compression is 'GZIP'.*shuffle: True"):
    _feeder(tmp_path, compression="GZIP")


def test_index_too_big_suggests_the_buffer_shuffle(tmp_path):
  _write_sorted(tmp_path, [100])
  expected = r"of 100 records needs 1,600 bytes.*max_index_bytes \(1,000 bytes\); use shuffle: True"
  with pytest.raises(UserError, match=expected):
    _feeder(tmp_path, max_index_bytes=1000)


def test_unknown_shuffle_value_names_the_choices(tmp_path):
  _write_sorted(tmp_path, [10])
  with pytest.raises(UserError, match="feeder shuffle is 'full'; use False, True"):
    _feeder(tmp_path, shuffle="full")


_WORKER = """
import json, sys
import tensorflow as tf
from deephub.io.distributed import distributed_dataset
from deephub.io.tfrecord import TFRecordExamplesFeeder
pattern, out_path, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
strategy = tf.distribute.MultiWorkerMirroredStrategy()
feeder = TFRecordExamplesFeeder(
  file_patterns=[pattern], batch_size=8, shuffle="global", seed=5,
  features_map={"number": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
)
batches = iter(distributed_dataset(feeder, strategy, data_service="", where="feeder"))
local = [strategy.experimental_local_results(next(batches)["number"])[0] for _ in range(steps)]
local = [batch.numpy().tolist() for batch in local]
json.dump({"steps_per_epoch": feeder.steps_per_epoch(), "batches": local}, open(out_path, "w"))
"""


def test_two_workers_read_each_record_of_an_epoch_exactly_once(tmp_path):
  """Two MultiWorkerMirrored workers on 127.0.0.1, as tests/engine/test_distribute.py runs them."""
  import json
  import socket
  import subprocess
  import sys

  from tests.conftest import REPO

  _write_sorted(tmp_path, [70, 9, 33])  # 112 records, files of unequal sizes: 14 steps of 8.
  metadata.generate(sorted(str(path) for path in tmp_path.glob("data-*")))
  ports = []
  for _ in range(2):
    with socket.socket() as sock:
      sock.bind(("127.0.0.1", 0))
      ports.append(sock.getsockname()[1])
  workers = [f"127.0.0.1:{port}" for port in ports]
  children = []
  for index in range(2):
    tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    log = open(tmp_path / f"worker{index}.log", "w")
    args = [str(tmp_path / "data-*"), str(tmp_path / f"worker{index}.json"), "28"]  # Two epochs.
    children.append(
      subprocess.Popen(
        [sys.executable, "-c", _WORKER, *args],
        env={**os.environ, "PYTHONPATH": REPO, "TF_CONFIG": json.dumps(tf_config)},
        stdout=subprocess.DEVNULL,
        stderr=log,
      )
    )
  try:
    for child in children:
      child.wait(timeout=300)
  finally:
    for child in children:
      child.kill()
  for index, child in enumerate(children):
    assert child.returncode == 0, open(tmp_path / f"worker{index}.log").read()[-3000:]
  results = [json.load(open(tmp_path / f"worker{index}.json")) for index in range(2)]
  assert [result["steps_per_epoch"] for result in results] == [14, 14]
  for epoch in range(2):
    shares = [sum(result["batches"][14 * epoch : 14 * (epoch + 1)], []) for result in results]
    assert all(len(batch) == 4 for result in results for batch in result["batches"])
    assert sorted(shares[0] + shares[1]) == list(range(112))
  # The order is the single-worker order, dealt out record by record.
  order = _numbers(_feeder(tmp_path, seed=5).dataset(epochs=1))
  assert sum(results[0]["batches"][:14], []) == order[0::2]
  assert sum(results[1]["batches"][:14], []) == order[1::2]

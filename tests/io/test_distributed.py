"""Train input across replicas and through an in-process tf.data service on 127.0.0.1."""

import numpy as np
import pytest
import tensorflow as tf

from deephub.engine import train_and_evaluate
from deephub.errors import UserError
from deephub.io.distributed import distributed_dataset, through_data_service
from tests.conftest import read_scalars

service = tf.data.experimental.service


@pytest.fixture
def data_service():
  """A dispatcher and one worker on 127.0.0.1; yields 'grpc://127.0.0.1:PORT'."""
  dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
  port = dispatcher.target.rsplit(":", 1)[1]
  worker = service.WorkerServer(
    service.WorkerConfig(dispatcher_address=f"127.0.0.1:{port}", worker_address="127.0.0.1:%port%")
  )
  yield f"grpc://127.0.0.1:{port}"
  worker._stop()
  dispatcher._stop()


@pytest.mark.parametrize("address", ["localhost", "grpc://host", "http://host:5050", "host:port"])
def test_malformed_address_names_the_key(address):
  with pytest.raises(UserError, match="runtime.data_service is"):
    distributed_dataset(None, tf.distribute.get_strategy(), data_service=address, where="train.train_feeder")


def test_pipeline_runs_on_the_service(data_service):
  dataset = through_data_service(tf.data.Dataset.range(6).map(lambda x: x * 10), data_service)
  assert b"DataServiceDataset" in dataset._as_serialized_graph().numpy()
  assert sorted(dataset.as_numpy_iterator()) == [0, 10, 20, 30, 40, 50]


def test_toy_trains_through_the_service_as_it_does_locally(toy_config, data_service):
  toy_config.train.epochs = 4
  local_dir = toy_config.model.model_dir + "_local"
  toy_config.runtime.data_service = data_service
  served = train_and_evaluate(toy_config)
  toy_config.runtime.data_service = ""
  toy_config.model.model_dir = local_dir
  local = train_and_evaluate(toy_config)

  served_dir = local_dir[: -len("_local")]
  assert tf.train.load_checkpoint(served_dir).get_tensor("global_step") == 4
  # One service worker and sharding OFF: the same batches in the same order.
  served_loss, local_loss = read_scalars(served_dir)["loss"], read_scalars(local_dir)["loss"]
  assert sorted(served_loss) == [1, 2, 3, 4]
  np.testing.assert_allclose([served_loss[s] for s in range(1, 5)], [local_loss[s] for s in range(1, 5)])
  assert served == pytest.approx(local)

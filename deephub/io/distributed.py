"""Train input for a tf.distribute strategy, optionally through the tf.data service.

`strategy.distribute_datasets_from_function` calls the feeder once per input
pipeline (one per worker) with an `InputContext`, so each pipeline reads its
own share of the files in per-replica batches. With `runtime.data_service`
set, that pipeline runs on the tf.data service's workers instead of this
process, which then only receives finished batches.
"""

import re
from collections.abc import Callable

import tensorflow as tf

from deephub.errors import UserError

# '[grpc://]host:port', the form tf.data.experimental.service.distribute takes.
_ADDRESS = re.compile(r"^(grpc://)?[^\s:/]+:\d+$")


def distributed_dataset(
  feeder,
  strategy: tf.distribute.Strategy,
  *,
  data_service: str,
  where: str,
  on_built: Callable[[tf.data.Dataset], None] | None = None,
):
  """Returns the strategy's distributed dataset of `feeder`, repeated forever.

  Args:
    feeder: a feeder with `dataset(epochs, input_context=...)`.
    strategy: the strategy whose replicas consume the batches.
    data_service: tf.data service dispatcher address, or '' to read locally.
    where: the feeder's config path, for error messages.
    on_built: called with each input pipeline's dataset as the strategy
      builds it (before the tf.data service, if any): the strategies build
      them here, so its element spec is known before the model is built.

  Raises:
    UserError: a malformed `data_service` address, or a global batch that
      does not split across the replicas.
  """
  if data_service and not _ADDRESS.match(data_service):
    raise UserError(
      f"runtime.data_service is {data_service!r}; set it to the dispatcher's "
      "'grpc://host:port' (printed by `python -m deephub.data_service`) or ''"
    )

  def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
    try:
      dataset = feeder.dataset(epochs=None, input_context=input_context)
    except UserError as error:
      raise UserError(f"{where}: {error}") from None
    if on_built is not None:
      on_built(dataset)
    return through_data_service(dataset, data_service) if data_service else dataset

  return strategy.distribute_datasets_from_function(dataset_fn)


def through_data_service(dataset: tf.data.Dataset, address: str) -> tf.data.Dataset:
  """Runs `dataset` on the tf.data service at `address` and streams its elements here.

  Sharding is OFF (the service's default): the dataset already holds only
  this input pipeline's share, and every service worker produces that
  stream; with several service workers, batches from different workers
  interleave, so an epoch is a count of batches rather than one exact pass.
  """
  distributed = dataset.apply(
    tf.data.experimental.service.distribute(
      processing_mode=tf.data.experimental.service.ShardingPolicy.OFF, service=address
    )
  )
  # Overlap the network transfer with the train step.
  return distributed.prefetch(tf.data.AUTOTUNE)

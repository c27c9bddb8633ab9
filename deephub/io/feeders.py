"""The feeder registry: a feeder config's `type` to its class."""

from collections.abc import Mapping
from typing import Any

from deephub.errors import UserError, closest
from deephub.io.memory import MemorySamplesFeeder
from deephub.io.parquet import ParquetExamplesFeeder
from deephub.io.tfrecord import TFRecordExamplesFeeder

FEEDERS = {
  "TFRecordExamplesFeeder": TFRecordExamplesFeeder,
  "MemorySamplesFeeder": MemorySamplesFeeder,
  # Needs the io extra (tensorflow-io), imported only when this feeder is built.
  "ParquetExamplesFeeder": ParquetExamplesFeeder,
}


def make_feeder(
  config: Mapping[str, Any],
  *,
  seed: int | None = None,
  where: str = "feeder",
  max_index_bytes: int | None = None,
):
  """Builds the feeder named by `config['type']` with the other keys.

  Args:
    config: a feeder config (ConfigDict or dict).
    seed: shuffle seed.
    where: config path of the feeder, for error messages.
    max_index_bytes: `runtime.max_index_bytes`, for the TFRecord feeders'
      record index; None keeps their default.

  Raises:
    UserError: unknown feeder type or an invalid value.
  """
  params = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  kind = params.get("type", "")
  if kind not in FEEDERS:
    raise UserError(f"{where}.type is {kind!r}; use one of {closest(kind, FEEDERS)}")
  if max_index_bytes is not None and issubclass(FEEDERS[kind], TFRecordExamplesFeeder):
    params["max_index_bytes"] = max_index_bytes
  try:
    return FEEDERS[kind](seed=seed, **params)
  except UserError as error:
    raise UserError(f"{where}: {error}") from None
  except TypeError as error:
    raise UserError(f"{where}: {error}") from None

"""The feeder registry: a feeder config's `type` to its class, or a user's 'package.module:Class'."""

from collections.abc import Mapping
from typing import Any

from deephub.errors import UserError, closest
from deephub.io.memory import MemorySamplesFeeder
from deephub.io.parquet import ParquetExamplesFeeder
from deephub.io.tfrecord import TFRecordExamplesFeeder
from deephub.io.user_feeder import build_user_feeder

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

  A `type` of 'package.module:Class' is a user's own feeder class, called with
  `init_args` only (`deephub.io.user_feeder`).

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
  init_args = params.pop("init_args", None) or {}
  if ":" in str(kind):
    return build_user_feeder(kind, init_args, seed=seed, where=where)
  if init_args:
    raise UserError(
      f"{where}.init_args is set but type {kind!r} is deephub's own feeder; set its keys directly on {where}"
    )
  if kind not in FEEDERS:
    raise UserError(
      f"{where}.type is {kind!r}; use one of {closest(kind, FEEDERS)}, or 'package.module:Class' for your own"
    )
  if max_index_bytes is not None and issubclass(FEEDERS[kind], TFRecordExamplesFeeder):
    params["max_index_bytes"] = max_index_bytes
  try:
    return FEEDERS[kind](seed=seed, **params)
  except UserError as error:
    raise UserError(f"{where}: {error}") from None
  except TypeError as error:
    raise UserError(f"{where}: {error}") from None

"""Every deephub feeder is a `deephub.io.feeder.Feeder` and takes the feeder config's defaults."""

import inspect

import pytest

from deephub import defaults
from deephub.io.parquet import ParquetExamplesFeeder
from deephub.io.tfrecord import TFRecordExamplesFeeder


@pytest.mark.parametrize("feeder_class", [TFRecordExamplesFeeder, ParquetExamplesFeeder])
def test_keyword_defaults_are_the_config_defaults(feeder_class):
  """A feeder built in Python defaults as one built from `defaults.feeder_config()`."""
  config = defaults.feeder_config()
  parameters = inspect.signature(feeder_class).parameters
  compared = 0
  for name, parameter in parameters.items():
    if parameter.default is inspect.Parameter.empty or name not in config or name in ("type", "labels_map"):
      continue
    assert parameter.default == config[name], name
    compared += 1
  assert compared >= 9  # shuffle ... auto_generate_meta (ParquetExamplesFeeder: the same keys).

"""use_xla: XLA as asked on accelerators, on CPU-only machines only when forced."""

import ml_collections
import pytest

from deephub.config import defaults
from deephub.engine.xla_policy import accelerator_types, use_xla


@pytest.mark.parametrize(
  ("xla", "xla_on_cpu", "accelerators", "expected"),
  [
    (True, False, [], False),  # The defaults on a CPU-only machine.
    (True, True, [], True),
    (True, False, ["GPU"], True),
    (True, False, ["TPU"], True),
    (False, True, ["GPU"], False),  # runtime.xla False always wins.
    (False, False, [], False),
  ],
)
def test_use_xla(xla, xla_on_cpu, accelerators, expected):
  runtime = ml_collections.ConfigDict({"xla": xla, "xla_on_cpu": xla_on_cpu})
  assert use_xla(runtime, accelerators=accelerators) is expected


def test_defaults_ask_for_xla_but_not_on_cpu():
  runtime = defaults.base_config().runtime
  assert runtime.xla and not runtime.xla_on_cpu


def test_this_machine_is_judged_by_its_devices():
  assert set(accelerator_types()) <= {"GPU", "TPU"}
  assert use_xla(defaults.base_config().runtime) is bool(accelerator_types())

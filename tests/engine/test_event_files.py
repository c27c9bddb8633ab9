"""Reading scalars back and comparing them."""

import pytest

from deephub.engine.event_files import is_better, read_scalars
from deephub.engine.summaries import ScalarWriter


@pytest.mark.parametrize(
  "value, best, higher, expected",
  [(1.0, None, False, True), (1.0, 2.0, False, True), (2.0, 2.0, False, False), (3.0, 2.0, True, True),
   (2.0, 2.0, True, False), (1.0, 2.0, True, False)],
)  # fmt: skip
def test_is_better(value, best, higher, expected):
  assert is_better(value, best, higher_is_better=higher) is expected


def test_read_scalars_by_step(tmp_path):
  writer = ScalarWriter(str(tmp_path))
  writer.write_scalars(5, {"loss": 1.0, "accuracy": 0.5})
  writer.write_scalars(2, {"loss": 2.0})
  writer.close()
  assert read_scalars(str(tmp_path)) == {2: {"loss": 2.0}, 5: {"loss": 1.0, "accuracy": 0.5}}
  assert read_scalars(str(tmp_path / "missing")) == {}

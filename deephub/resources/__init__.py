"""Data shipped with the package (the toy dataset)."""

import os


def toy_data_dir() -> str:
  """Returns the folder of the bundled toy TFRecord files."""
  return os.path.join(os.path.dirname(__file__), "blobs", "data", "toy")

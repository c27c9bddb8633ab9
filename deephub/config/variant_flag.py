"""ml_collections config-file hook: `--config=<this file>:<variant path>`.

`deephub.train` loads the variant once (to check `--config.KEY` overrides)
and hands that config over here through `variants.config_file_flag`, so the
variant's file is not run or read a second time. ml_collections executes this
file as a fresh module; the import below reaches the real `deephub.variants`.
"""

import ml_collections


def get_config(path: str) -> ml_collections.ConfigDict:
  """The config handed over for `path`, else the variant file loaded now."""
  from deephub.config import variants

  return variants.take_config(path)

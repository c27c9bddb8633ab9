"""What to do after a run: the lines printed when training finishes.

A new user's next questions are where the run went, how to see its curves
and where the servable model is; the answers are printed rather than left to
the README.
"""

import os
import shlex


def newest_export(model_dir: str) -> str | None:
  """The newest SavedModel under `model_dir/export/<exporter>/<timestamp>`, if any.

  Exports are timestamped folders (`engine/serving.py`); half-written ones
  are named `temp-*` and have no `saved_model.pb` yet, so they never count.
  """
  import tensorflow as tf  # Loaded by the run already; gfile reads remote model_dirs too.

  exports = [
    os.path.dirname(path)
    for path in tf.io.gfile.glob(os.path.join(model_dir, "export", "*", "*", "saved_model.pb"))
    if os.path.basename(os.path.dirname(path)).isdigit()
  ]
  return max(exports, key=lambda path: int(os.path.basename(path)), default=None)


def lines(model_dir: str) -> list[str]:
  """The lines `deephub: next: ...` saying where the run is and what to run next."""
  found = [
    f"deephub: model_dir {model_dir}",
    f"deephub: see the curves with: tensorboard --logdir {shlex.quote(model_dir)}",
  ]
  export = newest_export(model_dir)
  if export is not None:
    found.append(f"deephub: newest export (SavedModel): {export}")
  return found

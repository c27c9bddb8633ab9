"""`model_dir/metrics.csv`: the last train and eval scalars, for spreadsheets and sweeps.

One row per data set (`train` from model_dir's events, `validation` from
`eval/`), each holding the newest step's scalars, in the legacy deephub
layout: columns `data_set`, `step`, then every tag (train tags first).
`global_step/sec` is left out: it measures the machine, not the model.
"""

import csv
import io
import os

import tensorflow as tf
from absl import logging

from deephub.engine.event_files import read_scalars

_EXCLUDED_TAGS = ("global_step/sec",)


def last_rows(model_dir: str) -> list[dict[str, str | int]]:
  """Returns the `train` and `validation` rows (only those with events)."""
  rows = []
  for data_set, logdir in (("train", model_dir), ("validation", os.path.join(model_dir, "eval"))):
    history = read_scalars(logdir)
    if not history:
      continue
    step = max(history)
    scalars = {tag: f"{value:.5f}" for tag, value in history[step].items() if tag not in _EXCLUDED_TAGS}
    rows.append({"data_set": data_set, "step": step, **scalars})
  return rows


def write_metrics_csv(model_dir: str) -> str | None:
  """Writes `model_dir/metrics.csv`; returns its path, or None when there are no scalars."""
  rows = last_rows(model_dir)
  if not rows:
    logging.warning("No scalars in %s; metrics.csv not written", model_dir)
    return None
  columns = list(dict.fromkeys(key for row in rows for key in row))
  text = io.StringIO()
  writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  path = os.path.join(model_dir, "metrics.csv")
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(text.getvalue())
  logging.info("Wrote %s", path)
  return path

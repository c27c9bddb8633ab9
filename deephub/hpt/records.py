"""Where a trial's files go and what deephub records on it in the study (no TensorFlow here)."""

import os

# Trial user attributes (shown by Optuna's own tools too).
ERROR_ATTR = "error"  # Why a failed trial failed, in one line.
STEPS_ATTR = "steps"  # The global step the trial ended at.
RESUMED_ATTR = "resumed_from_step"  # Set when a trial continued from an earlier checkpoint.
# Trial system attributes: which worker runs it, and when it last said so.
OWNER_ATTR = "deephub:owner"
HEARTBEAT_ATTR = "deephub:heartbeat"


def trial_dir(study_dir: str, number: int) -> str:
  """The model_dir of trial `number`."""
  return os.path.join(study_dir, f"trial-{number}")

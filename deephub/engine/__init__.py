"""The training engine: compiled inner loop, Python outer loop, Estimator-layout files."""

from deephub.engine.loop import NonFiniteLossError, train_and_evaluate
from deephub.engine.modes import evaluate, export, predict

__all__ = ["NonFiniteLossError", "evaluate", "export", "predict", "train_and_evaluate"]

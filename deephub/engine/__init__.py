"""The training engine: compiled inner loop, Python outer loop, Estimator-layout files."""

from deephub.engine.loop import train_and_evaluate
from deephub.engine.modes import evaluate, export, predict
from deephub.engine.run import NonFiniteLossError

__all__ = ["NonFiniteLossError", "evaluate", "export", "predict", "train_and_evaluate"]

"""The training engine: compiled inner loop, Python outer loop, Estimator-layout files."""

from deephub.engine.actions import NonFiniteLossError
from deephub.engine.controller import StopReason
from deephub.engine.modes import evaluate, export, predict
from deephub.engine.train import train_and_evaluate

__all__ = ["NonFiniteLossError", "StopReason", "evaluate", "export", "predict", "train_and_evaluate"]

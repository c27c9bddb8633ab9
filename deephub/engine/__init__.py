"""The training engine: compiled inner loop, Python outer loop, Estimator-layout files."""

from deephub.engine.loop import NonFiniteLossError, train_and_evaluate

__all__ = ["NonFiniteLossError", "train_and_evaluate"]

"""What a deephub model provides to the engine.

A model owns its network (Keras 3 layers whose variable paths become the
checkpoint keys), its loss, its optimizer, the scalars it wants summarised
while training, its eval metrics and its predictions. The engine owns the
loop, the step counter and the files.
"""

import abc
from collections.abc import Mapping, Sequence
from typing import ClassVar

import keras
import tensorflow as tf

from deephub.errors import UserError

Tensors = Mapping[str, tf.Tensor]


class Model(abc.ABC):
  """Base class of registry models; subclasses take their config params as kwargs."""

  # True in a model whose `__call__` takes SparseTensor features (from a
  # VarLenFeature); the engine refuses such features for the others, which
  # would fail deep inside tracing (see `check_dense_features`).
  accepts_sparse_features: ClassVar[bool] = False

  def __init__(self, *, feature_names: Sequence[str], label_names: Sequence[str]):
    """Args:
    feature_names: feature keys in `features_map` order.
    label_names: label keys in `labels_map` order.
    """
    self.feature_names = list(feature_names)
    self.label_names = list(label_names)

  @property
  @abc.abstractmethod
  def network(self) -> keras.layers.Layer:
    """The layer that holds every variable, built in `__init__`."""

  def build(self, feature_specs: Mapping[str, tf.TensorSpec]) -> None:
    """Creates variables that depend on the input shapes; called once before training.

    Args:
      feature_specs: the train feeder's batched feature specs by name.

    Default: nothing, for networks whose variables exist after `__init__`.
    """
    del feature_specs

  @abc.abstractmethod
  def __call__(self, features: Tensors, *, training: bool) -> dict[str, tf.Tensor]:
    """Returns the model outputs (for classifiers: `{'logits': ...}`)."""

  @abc.abstractmethod
  def loss(self, labels: Tensors, outputs: Tensors) -> tf.Tensor:
    """Returns the per-example loss, shape [batch]; the engine averages it."""

  @abc.abstractmethod
  def optimizer(self) -> keras.optimizers.Optimizer:
    """Returns a new optimizer; called once per run."""

  def train_summaries(
    self, labels: Tensors, outputs: Tensors, optimizer: keras.optimizers.Optimizer
  ) -> dict[str, tf.Tensor]:
    """Scalars summarised while training, besides `loss`. Default: none."""
    del labels, outputs, optimizer
    return {}

  def eval_metrics(self, labels: Tensors, outputs: Tensors) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
    """Returns `{name: (sum, count)}` per batch; the engine reports sum/count over the pass."""
    del labels, outputs
    return {}

  def predictions(self, outputs: Tensors) -> dict[str, tf.Tensor]:
    """What serving returns. Default: the outputs themselves."""
    return dict(outputs)

  @property
  def trainable_variables(self) -> list[tf.Variable]:
    return list(self.network.trainable_variables)

  def named_variables(self) -> dict[str, tf.Variable]:
    """Every network variable by its path (`toy/w1`), the checkpoint key."""
    return {variable.path: variable for variable in self.network.weights}


def check_dense_features(model: Model, feature_specs: Mapping[str, tf.TypeSpec], *, where: str) -> None:
  """Refuses sparse or ragged features for a model that takes dense tensors only.

  Args:
    model: the model the features go to.
    feature_specs: the feeder's batched feature specs by name.
    where: config path of the feeder, for the message.

  Raises:
    UserError: naming the first sparse feature and what to do.
  """
  if model.accepts_sparse_features:
    return
  for name, spec in feature_specs.items():
    if isinstance(spec, (tf.SparseTensorSpec, tf.RaggedTensorSpec)):
      raise UserError(
        f"{where}.features_map.{name} is a VarLenFeature (a SparseTensor per batch), but "
        f"{type(model).__name__} takes dense features only; make it a FixedLenFeature with a shape "
        "(or FixedLenSequenceFeature), or use a model that sets accepts_sparse_features = True"
      )

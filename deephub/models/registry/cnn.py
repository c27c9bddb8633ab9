"""SmallCNN: a few strided conv layers, global average pooling and logits, for images.

The input is the first feature, a batch of images `[batch, height, width,
channels]` (an `ImageFeature` with `resize_height` / `resize_width`, so
every batch has one size). Each conv layer is 3x3 (by default) with stride 2
and a relu, so the feature map halves per layer; global average pooling
makes the logits independent of the image size. Loss, optimizer, learning-rate
schedules, summaries and eval metrics are the `Classifier`'s (softmax
cross-entropy, Adam, `training_accuracy`, `accuracy`).
"""

from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

from deephub.errors import UserError
from deephub.models.base import Tensors
from deephub.models.classifier import Classifier


class _CNNNetwork(keras.layers.Layer):
  """`cnn/conv_<i>` (stride 2, relu), global average pooling, `cnn/logits`."""

  def __init__(self, *, filters: Sequence[int], kernel_size: int, num_classes: int):
    # The layer name is the variable scope: weight paths become "cnn/conv_0/kernel".
    super().__init__(name="cnn")
    self.convs = [
      keras.layers.Conv2D(n, kernel_size, strides=2, padding="same", activation="relu", name=f"conv_{i}")
      for i, n in enumerate(filters)
    ]
    self.pool = keras.layers.GlobalAveragePooling2D()
    self.logits = keras.layers.Dense(num_classes, name="logits")

  def build(self, input_shape):
    # Sub-layers built inside this build get paths under "cnn/".
    shape = tuple(input_shape)
    for conv in self.convs:
      conv.build(shape)
      shape = conv.compute_output_shape(shape)
    self.logits.build((None, shape[-1]))

  def call(self, x):
    for conv in self.convs:
      x = conv(x)
    return self.logits(self.pool(x))


class SmallCNN(Classifier):
  """Image -> Conv2D(filters[i], stride 2, relu)... -> global average pool -> num_classes logits, Adam."""

  def __init__(
    self,
    *,
    num_classes: int,
    filters: Sequence[int] = (16, 32, 64),
    kernel_size: int = 3,
    **params,
  ):
    """Args:
    num_classes: number of logits.
    filters: output channels of each conv layer, input side first.
    kernel_size: height and width of every conv kernel.
    **params: the other `Classifier` params (learning_rate, the schedule)
      and the engine's `feature_names` / `label_names`.

    Raises:
      UserError: empty or non-positive `filters`, or `kernel_size` < 1.
    """
    if num_classes < 1:
      raise UserError(f"model.num_classes is {num_classes}; set it to the number of lines of labels.txt")
    super().__init__(num_classes=num_classes, **params)
    filters = list(filters)
    if not filters or any(int(n) < 1 for n in filters):
      raise UserError(f"model.filters is {filters}; give a list of positive channel counts, e.g. [16, 32]")
    if kernel_size < 1:
      raise UserError(f"model.kernel_size is {kernel_size}; give 1 or more")
    self._network = _CNNNetwork(
      filters=[int(n) for n in filters], kernel_size=kernel_size, num_classes=num_classes
    )

  def build(self, feature_specs: Mapping[str, tf.TensorSpec]) -> None:
    """Creates the variables for the image channels of the first feature.

    Raises:
      UserError: the feature is not a batch of images with known channels.
    """
    name = self.feature_names[0]
    spec = feature_specs[name]
    if len(spec.shape) != 4 or spec.shape[-1] is None:
      raise UserError(
        f"features_map.{name} has shape {spec.shape} per batch; SmallCNN needs images [batch, height, "
        "width, channels]: an ImageFeature with channels 1, 3 or 4"
      )
    self._network.build((None, None, None, spec.shape[-1]))

  def _inputs(self, features: Tensors) -> tf.Tensor:
    """The first feature, the image batch, as float32."""
    return tf.cast(features[self.feature_names[0]], tf.float32)

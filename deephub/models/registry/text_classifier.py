"""EmbeddingClassifier: token ids -> embeddings -> mean or max pooling -> logits.

The input is the first feature, int token ids `[batch, length]` as `deep
preprocessor text` writes them: id 0 is padding and is left out of the
pooling (a row of padding only pools to zeros). Loss, optimizer, learning-rate
schedules, summaries and eval metrics are the `Classifier`'s (softmax
cross-entropy, Adam, `training_accuracy`, `accuracy`).
"""

import keras
import tensorflow as tf

from deephub.errors import UserError
from deephub.models.base import Tensors
from deephub.models.classifier import Classifier

POOLINGS = ("mean", "max")
PAD_ID = 0


class _TextNetwork(keras.layers.Layer):
  """`text/embedding`, masked pooling, `text/logits`."""

  def __init__(self, *, vocab_size: int, embedding_dim: int, num_classes: int, pooling: str):
    # The layer name is the variable scope: weight paths become "text/embedding/embeddings".
    super().__init__(name="text")
    self.pooling = pooling
    self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
    self.logits = keras.layers.Dense(num_classes, name="logits")
    self.embedding_dim = embedding_dim

  def build(self, input_shape):
    # Sub-layers built inside this build get paths under "text/".
    self.embedding.build(input_shape)
    self.logits.build((None, self.embedding_dim))

  def call(self, ids):
    vectors = self.embedding(ids)  # [batch, length, dim]
    mask = tf.cast(tf.not_equal(ids, PAD_ID), vectors.dtype)[:, :, None]
    if self.pooling == "mean":
      pooled = tf.reduce_sum(vectors * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
    else:
      # Padding positions get the lowest value, so they never win; all-padding rows become 0.
      masked = tf.where(mask > 0, vectors, tf.fill(tf.shape(vectors), vectors.dtype.min))
      pooled = tf.where(tf.reduce_any(mask > 0, axis=1), tf.reduce_max(masked, axis=1), 0.0)
    return self.logits(pooled)


class EmbeddingClassifier(Classifier):
  """Token ids -> Embedding(vocab_size, embedding_dim) -> mean/max over non-pad tokens -> logits, Adam."""

  def __init__(
    self,
    *,
    vocab_size: int,
    num_classes: int,
    embedding_dim: int = 32,
    pooling: str = "mean",
    **params,
  ):
    """Args:
    vocab_size: embedding rows; vocab.json's size (ids must be below it).
    num_classes: number of logits; labels.json's size.
    embedding_dim: width of each token vector.
    pooling: 'mean' or 'max' over the non-padding tokens.
    **params: the other `Classifier` params (learning_rate, the schedule)
      and the engine's `feature_names` / `label_names`.

    Raises:
      UserError: a non-positive size or an unknown pooling.
    """
    for key, value in (
      ("vocab_size", vocab_size),
      ("embedding_dim", embedding_dim),
      ("num_classes", num_classes),
    ):
      if value < 1:
        raise UserError(
          f"model.{key} is {value}; give 1 or more (`deep preprocessor text` prints vocab_size "
          "and num_classes)"
        )
    if pooling not in POOLINGS:
      raise UserError(f"model.pooling is {pooling!r}; use one of {', '.join(POOLINGS)}")
    super().__init__(num_classes=num_classes, **params)
    self._network = _TextNetwork(
      vocab_size=vocab_size, embedding_dim=embedding_dim, num_classes=num_classes, pooling=pooling
    )

  def build(self, feature_specs) -> None:
    """Creates the embedding and logits variables (their sizes come from the config)."""
    del feature_specs
    self._network.build((None, None))

  def _inputs(self, features: Tensors) -> tf.Tensor:
    """The first feature, the token ids, as int32."""
    return tf.cast(features[self.feature_names[0]], tf.int32)

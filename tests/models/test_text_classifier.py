"""EmbeddingClassifier: masked mean and max pooling, variable names, parameter errors."""

import numpy as np
import pytest
import tensorflow as tf

from deephub.errors import UserError
from deephub.models import build_model


def _classifier(**params):
  """A built EmbeddingClassifier (6 tokens, 3-wide vectors) with `params` overriding."""
  config = {
    "type": "text_classifier:EmbeddingClassifier",
    "vocab_size": 6,
    "num_classes": 2,
    "learning_rate": 0.01,
    "embedding_dim": 3,
  }
  config.update(params)
  model = build_model(config, feature_names=["text"], label_names=["label"])
  model.build({"text": tf.TensorSpec([None, 4], tf.int64)})
  return model


@pytest.mark.parametrize(
  ("pooling", "ids", "expected"),
  [
    # Padding (id 0) is left out: the mean of rows 2 and 3, not of four rows.
    ("mean", [2, 3, 0, 0], lambda table: (table[2] + table[3]) / 2),
    ("max", [2, 3, 0, 0], lambda table: np.maximum(table[2], table[3])),
    ("mean", [0, 0, 0, 0], lambda table: np.zeros(3)),
    ("max", [0, 0, 0, 0], lambda table: np.zeros(3)),
    ("max", [5, 0, 5, 1], lambda table: np.maximum(table[5], table[1])),
  ],
)
def test_pooling_ignores_padding(pooling, ids, expected):
  model = _classifier(pooling=pooling, num_classes=3)
  table = model.network.embedding.embeddings.numpy()
  # The embedding table sets pad's row far from the others: it must not leak in.
  table[0] = 100.0
  model.network.embedding.embeddings.assign(table)
  model.network.logits.kernel.assign(np.eye(3, dtype=np.float32))
  model.network.logits.bias.assign(np.zeros(3, np.float32))
  logits = model({"text": tf.constant([ids], tf.int64)}, training=False)["logits"].numpy()[0]
  np.testing.assert_allclose(logits, expected(table), rtol=1e-5, atol=1e-6)


def test_variables_are_named_under_text():
  model = _classifier()
  assert {name: list(v.shape) for name, v in model.named_variables().items()} == {
    "text/embedding/embeddings": [6, 3],
    "text/logits/kernel": [3, 2],
    "text/logits/bias": [2],
  }


@pytest.mark.parametrize(
  ("params", "message"),
  [
    ({"vocab_size": 0}, "model.vocab_size is 0; give 1 or more"),
    ({"num_classes": 0}, "model.num_classes is 0"),
    ({"embedding_dim": 0}, "model.embedding_dim is 0"),
    ({"pooling": "sum"}, "model.pooling is 'sum'; use one of mean, max"),
  ],
)
def test_bad_params_raise_user_errors(params, message):
  with pytest.raises(UserError, match=message):
    _classifier(**params)

"""deephub.preprocess.text: normalization, vocabulary rules, bad rows and interrupted runs."""

import os

import pytest

from deephub.errors import UserError
from deephub.io import metadata
from deephub.preprocess import text, tokenizers


@pytest.mark.parametrize(
  ("raw", "normalized"),
  [
    ("  Hello   WORLD \t!\n", "hello world !"),
    ("Ｆｕｌｌ　width", "full width"),  # NFKC folds full-width letters and spaces.
    ("Straße ÜBEL", "straße übel"),
    ("", ""),
  ],
)
def test_normalize(raw, normalized):
  assert tokenizers.normalize(raw) == normalized


@pytest.mark.parametrize(
  ("min_count", "max_size", "expected"),
  [
    (1, 100, ["<PAD>", "<OOV>", "a", "b", "c", "d"]),  # Most frequent first, ties by token.
    (2, 100, ["<PAD>", "<OOV>", "a", "b", "c"]),
    (3, 100, ["<PAD>", "<OOV>", "a"]),
    (1, 4, ["<PAD>", "<OOV>", "a", "b"]),
    (1, 2, ["<PAD>", "<OOV>"]),
  ],
)
def test_build_vocab(min_count, max_size, expected):
  tokens = [["a", "b", "c"], ["a", "c", "b"], ["a", "d", "<PAD>"]]
  vocab = text.build_vocab(
    tokens, min_count=min_count, max_size=max_size, pad_token="<PAD>", oov_token="<OOV>"
  )
  assert list(vocab) == expected and list(vocab.values()) == list(range(len(expected)))


def test_build_vocab_refuses_equal_special_tokens_and_tiny_sizes():
  with pytest.raises(UserError, match="both '<X>'"):
    text.build_vocab([], min_count=1, max_size=10, pad_token="<X>", oov_token="<X>")
  with pytest.raises(UserError, match="--max-vocab-size is 1"):
    text.build_vocab([], min_count=1, max_size=1, pad_token="p", oov_token="o")


def test_read_split_skips_and_counts_rows_with_a_missing_value(tmp_path):
  path = tmp_path / "train.csv"
  path.write_text(
    "\ufefftext,label\nGood  one,pos\n,neg\n   ,neg\nbad,\nshort row\nfine,neg\n", encoding="utf-8"
  )
  split = text.read_split(str(path), text_column="text", label_column="label")
  assert (split.name, split.texts, split.labels, split.missing_rows) == (
    "train", ["good one", "fine"], ["pos", "neg"], 4
  )  # fmt: skip


def _csv(path, rows):
  path.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows), encoding="utf-8")
  return str(path)


def test_an_interrupted_run_leaves_no_partial_file_and_no_metadata(tmp_path):
  train = _csv(tmp_path / "train.csv", [("a b", "x"), ("b c", "y")] * 5)
  dev = _csv(tmp_path / "dev.csv", [("a", "x"), ("c", "z")] * 5)
  out = tmp_path / "out"
  text.preprocess(csv_files=[train, dev], output_dir=str(out), min_count_term=1)
  assert sorted(metadata.read_metadata(str(out))) == ["dev.tfr", "train.tfr"]
  rows = []

  def interrupt_in_dev():
    rows.append(1)
    if len(rows) == 13:  # The third row of dev.csv.
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    text.preprocess(csv_files=[train, dev], output_dir=str(out), min_count_term=1, on_row=interrupt_in_dev)
  # The earlier run's metadata no longer describes files this run rewrote.
  assert metadata.read_metadata(str(out)) == {}
  assert not [name for name in os.listdir(out) if name.startswith(".tmp-")]
  report = text.preprocess(csv_files=[train, dev], output_dir=str(out), min_count_term=1)
  assert report.stats["dev"]["unknown_label_rows"] == 5  # Label z is not in the training split.
  assert {name: e.total_records for name, e in metadata.read_metadata(str(out)).items()} == {
    "train.tfr": 10, "dev.tfr": 5,
  }  # fmt: skip


@pytest.mark.parametrize(
  ("kwargs", "message"),
  [
    ({"max_row_length": 0}, "--max-row-length is 0"),
    ({"max_sent_length": 0}, "--max-sent-length is 0"),
    ({"min_count_term": 0}, "--min-count-term is 0"),
    ({"tokenizer": "bert"}, "--tokenizer is 'bert'"),
    ({"tokenizer": "sentencepiece", "model_type": "wordpiece"}, "--model-type is 'wordpiece'"),
  ],
)
def test_bad_settings_are_user_errors(tmp_path, kwargs, message):
  train = _csv(tmp_path / "train.csv", [("a b", "x")])
  with pytest.raises(UserError, match=message):
    text.preprocess(csv_files=[train], output_dir=str(tmp_path / "out"), **kwargs)


def test_two_files_of_the_same_name_are_refused(tmp_path):
  (tmp_path / "b").mkdir()
  first, second = _csv(tmp_path / "train.csv", [("a", "x")]), _csv(tmp_path / "b" / "train.csv", [("a", "x")])
  with pytest.raises(UserError, match="both named 'train'"):
    text.preprocess(csv_files=[first, second], output_dir=str(tmp_path / "out"))

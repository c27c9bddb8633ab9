"""CSV files of labelled text to token-id TFRecords, a vocabulary and statistics.

  train.csv [dev.csv ...]  ->  OUT/train.tfr OUT/dev.tfr ...   (one per CSV, named after it)
                               OUT/vocab.json    {token: id}, pad 0, OOV 1
                               OUT/labels.json   {label: id}, sorted labels from 0
                               OUT/data_stats.json
                               OUT/_tfrecord_metadata.json   (written last)

Each record holds `text` (int64 [max_row_length]: the token ids, cut or
padded with the pad id 0) and `label` (int64 [1]). The vocabulary and the
labels come from the first (training) file only: a token seen fewer than
`min_count` times there, or beyond `max_vocab_size` (pad and OOV included),
becomes the OOV id 1; a row of another file whose label the training file
lacks is skipped and counted.

A row with an empty text or label is skipped and counted. With
`max_sent_length`, each sentence of a text (split after . ! ?) is cut to
that many tokens before the row is cut to `max_row_length`.
"""

import collections
import csv
import dataclasses
import json
import os
import re
from collections.abc import Callable, Sequence

import tensorflow as tf

from deephub.errors import UserError
from deephub.io import metadata
from deephub.preprocess import records, tokenizers

VOCAB_FILENAME = "vocab.json"
LABELS_FILENAME = "labels.json"
STATS_FILENAME = "data_stats.json"
RECORD_SUFFIX = ".tfr"
PAD_ID = 0
OOV_ID = 1
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclasses.dataclass
class Split:
  """One CSV file's usable rows and the rows it lost."""

  name: str
  path: str
  texts: list[str]  # Normalized.
  labels: list[str]
  missing_rows: int = 0  # Empty text or label.


@dataclasses.dataclass
class Report:
  """What was written: sizes and per-split statistics (as in data_stats.json)."""

  vocab_size: int
  num_classes: int
  stats: dict[str, dict]
  files: list[str]


def read_split(path: str, *, text_column: str, label_column: str) -> Split:
  """Reads the rows of one CSV, normalizing the texts and skipping rows with a missing value.

  Raises:
    UserError: the file is missing or lacks one of the columns.
  """
  if not os.path.isfile(path):
    raise UserError(f"{path} does not exist; give CSV files with a header row")
  name = os.path.splitext(os.path.basename(path))[0]
  split = Split(name=name, path=path, texts=[], labels=[])
  # utf-8-sig: a byte-order mark (Excel's CSVs) is not part of the first column name.
  with open(path, encoding="utf-8-sig", newline="") as f:
    reader = csv.DictReader(f)
    columns = reader.fieldnames or []
    for column, option in ((text_column, "--text-column"), (label_column, "--label-column")):
      if column not in columns:
        raise UserError(
          f"{path} has no column {column!r} (columns found: {', '.join(map(repr, columns)) or 'none'}); "
          f"name the right one with {option}"
        )
    for row in reader:
      text, label = normalize_cell(row.get(text_column)), (row.get(label_column) or "").strip()
      if not text or not label:
        split.missing_rows += 1
        continue
      split.texts.append(text)
      split.labels.append(label)
  return split


def normalize_cell(value: str | None) -> str:
  return tokenizers.normalize(value or "")


def tokenize(text: str, tokenizer: tokenizers.Tokenizer, *, max_sent_length: int | None) -> list[str]:
  """The text's tokens; with `max_sent_length`, each sentence cut to that many first."""
  if not max_sent_length:
    return tokenizer.tokenize(text)
  tokens = []
  for sentence in _SENTENCE_END.split(text):
    tokens += tokenizer.tokenize(sentence)[:max_sent_length]
  return tokens


def build_vocab(
  token_lists: Sequence[Sequence[str]], *, min_count: int, max_size: int, pad_token: str, oov_token: str
) -> dict[str, int]:
  """`{token: id}`: pad 0, OOV 1, then tokens seen at least `min_count` times, most frequent first.

  Ties go by token order, so the same data gives the same ids. At most
  `max_size` entries in all.
  """
  if pad_token == oov_token:
    raise UserError(f"--pad-token and --oov-token are both {pad_token!r}; give two different tokens")
  if max_size < 2:
    raise UserError(f"--max-vocab-size is {max_size}; give 2 or more (pad and OOV take ids 0 and 1)")
  counts = collections.Counter(token for tokens in token_lists for token in tokens)
  counts.pop(pad_token, None)
  counts.pop(oov_token, None)
  kept = sorted(
    (token for token, count in counts.items() if count >= min_count), key=lambda t: (-counts[t], t)
  )
  vocab = {pad_token: PAD_ID, oov_token: OOV_ID}
  for token in kept[: max_size - 2]:
    vocab[token] = len(vocab)
  return vocab


def token_ids(tokens: Sequence[str], vocab: dict[str, int], max_row_length: int) -> list[int]:
  """Ids of the first `max_row_length` tokens (unknown ones OOV), padded with PAD_ID."""
  ids = [vocab.get(token, OOV_ID) for token in tokens[:max_row_length]]
  return ids + [PAD_ID] * (max_row_length - len(ids))


def _bucket(length: int) -> str:
  """Histogram bucket: '0', '1', '2-3', '4-7', '8-15', ..."""
  if length < 2:
    return str(length)
  low = 1 << (length.bit_length() - 1)
  return f"{low}-{2 * low - 1}"


def _example(ids: list[int], label: int) -> bytes:
  feature = {"text": records.int64_feature(ids), "label": records.int64_feature([label])}
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def preprocess(
  *,
  csv_files: Sequence[str],
  output_dir: str,
  text_column: str = "text",
  label_column: str = "label",
  tokenizer: str = "whitespace",
  min_count_term: int = 5,
  max_vocab_size: int = 100_000,
  max_row_length: int = 15,
  max_sent_length: int | None = None,
  pad_token: str = "<PAD>",
  oov_token: str = "<OOV>",
  model_type: str = "unigram",
  on_split: Callable[[str, int], None] = lambda name, rows: None,
  on_row: Callable[[], None] = lambda: None,
) -> Report:
  """Writes one `<name>.tfr` per CSV, the vocabulary, labels and stats, then the metadata.

  Args:
    csv_files: the training CSV first, then any other splits.
    output_dir: created if missing.
    text_column, label_column: CSV column names.
    tokenizer: one of `tokenizers.TOKENIZERS`.
    min_count_term, max_vocab_size: vocabulary limits (see `build_vocab`).
    max_row_length: token ids per record.
    max_sent_length: cut each sentence to this many tokens; None keeps them.
    pad_token, oov_token: the tokens of ids 0 and 1.
    model_type: SentencePiece model type.
    on_split: called as `on_split(name, rows)` before writing each split.
    on_row: called after each row written, for progress.

  Returns:
    The vocabulary and label counts and the statistics.

  Raises:
    UserError: a missing file or column, a bad setting, or a missing package.
  """
  if max_row_length < 1:
    raise UserError(f"--max-row-length is {max_row_length}; give 1 or more")
  if max_sent_length is not None and max_sent_length < 1:
    raise UserError(f"--max-sent-length is {max_sent_length}; give 1 or more, or leave it out")
  if min_count_term < 1:
    raise UserError(f"--min-count-term is {min_count_term}; give 1 or more")
  splits = [read_split(path, text_column=text_column, label_column=label_column) for path in csv_files]
  names = [split.name for split in splits]
  duplicates = sorted({name for name in names if names.count(name) > 1})
  if duplicates:
    raise UserError(f"two CSV files are both named {duplicates[0]!r}; the output files are named after them")
  training = splits[0]
  if not training.texts:
    raise UserError(f"{training.path} has no row with both a text and a label; it is the training split")
  os.makedirs(output_dir, exist_ok=True)
  files = [split.name + RECORD_SUFFIX for split in splits]
  # An earlier run's metadata must not describe files this run rewrites, in
  # case it is interrupted.
  if metadata.read_metadata(output_dir):
    records.write_metadata_entries(output_dir, {}, drop=files)

  tokenizer_ = tokenizers.make_tokenizer(
    tokenizer,
    training_texts=training.texts,
    model_type=model_type,
    vocab_size=max_vocab_size,
    output_dir=output_dir,
  )
  tokens = {split.name: [tokenize(t, tokenizer_, max_sent_length=max_sent_length) for t in split.texts]
            for split in splits}  # fmt: skip
  vocab = build_vocab(
    tokens[training.name], min_count=min_count_term, max_size=max_vocab_size, pad_token=pad_token,
    oov_token=oov_token,
  )  # fmt: skip
  label_ids = {label: index for index, label in enumerate(sorted(set(training.labels)))}

  stats, entries = {}, {}
  for split, filename in zip(splits, files, strict=True):
    split_stats = {"rows": 0, "missing_rows": split.missing_rows, "unknown_label_rows": 0, "tokens": 0,
                   "oov_tokens": 0, "truncated_rows": 0}  # fmt: skip
    histogram = collections.Counter()
    on_split(split.name, len(split.texts))

    def serialized(split=split, split_stats=split_stats, histogram=histogram):
      for row_tokens, label in zip(tokens[split.name], split.labels, strict=True):
        on_row()
        if label not in label_ids:
          split_stats["unknown_label_rows"] += 1
          continue
        split_stats["rows"] += 1
        split_stats["tokens"] += len(row_tokens)
        split_stats["oov_tokens"] += sum(token not in vocab for token in row_tokens)
        split_stats["truncated_rows"] += len(row_tokens) > max_row_length
        histogram[len(row_tokens)] += 1
        yield _example(token_ids(row_tokens, vocab, max_row_length), label_ids[label])

    path = os.path.join(output_dir, filename)
    records.write_records(path, serialized())
    entries[filename] = metadata.scan_file(path)
    split_stats["oov_rate"] = split_stats["oov_tokens"] / max(split_stats["tokens"], 1)
    split_stats["length_histogram"] = {
      bucket: sum(n for length, n in histogram.items() if _bucket(length) == bucket)
      for bucket in sorted({_bucket(length) for length in histogram}, key=lambda b: int(b.split("-")[0]))
    }
    stats[split.name] = split_stats

  for filename, content in (
    (VOCAB_FILENAME, vocab),
    (LABELS_FILENAME, label_ids),
    (STATS_FILENAME, {"tokenizer": tokenizer, "max_row_length": max_row_length, "splits": stats}),
  ):
    with open(os.path.join(output_dir, filename), "w", encoding="utf-8") as f:
      json.dump(content, f, indent=1, ensure_ascii=False)
      f.write("\n")
  # Last: metadata only ever describes complete files.
  records.write_metadata_entries(output_dir, entries)
  return Report(vocab_size=len(vocab), num_classes=len(label_ids), stats=stats, files=files)

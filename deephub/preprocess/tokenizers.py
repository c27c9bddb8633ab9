"""The text preprocessor's tokenizers: text to a list of token strings, and back.

  char           every character, spaces included (lossless)
  whitespace     str.split() (lossless on normalized text)
  nltk           nltk's TreebankWordTokenizer: rules only, so it needs none
                 of nltk's downloadable data packages (punkt etc.)
  spacy          the tokenizer of `spacy.blank("en")`: rules only, no model
                 download
  sentencepiece  a SentencePiece model (unigram, bpe, char or word) trained
                 on the training split and saved beside the output

nltk, spaCy and sentencepiece come with the `text` extra
(`pip install 'deephub[text]'`) and are imported only when chosen.

Every text is normalized first (`normalize`): Unicode NFKC, lower case,
runs of whitespace to one space, no leading or trailing space.
"""

import importlib
import io
import os
import unicodedata
from collections.abc import Callable, Sequence
from types import ModuleType

from deephub.errors import UserError

TOKENIZERS = ("char", "whitespace", "nltk", "spacy", "sentencepiece")
MODEL_TYPES = ("unigram", "bpe", "char", "word")
SENTENCEPIECE_MODEL = "sentencepiece.model"
# SentencePiece marks a word start with this character ('▁', U+2581).
_WORD_START = "\u2581"


def normalize(text: str) -> str:
  """NFKC, lower case, single spaces, stripped: the text the token ids stand for."""
  return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _import(module: str, package: str) -> ModuleType:
  try:
    return importlib.import_module(module)
  except ImportError:
    raise UserError(
      f"--tokenizer needs {package}, which is not installed; run: pip install 'deephub[text]' "
      f"(or pip install {package})"
    ) from None


class Tokenizer:
  """A `tokenize(text) -> tokens` and its inverse `detokenize(tokens) -> text`."""

  def __init__(self, tokenize: Callable[[str], list[str]], detokenize: Callable[[Sequence[str]], str]):
    self.tokenize = tokenize
    self.detokenize = detokenize


def make_tokenizer(
  name: str,
  *,
  training_texts: Sequence[str] = (),
  model_type: str = "unigram",
  vocab_size: int = 8000,
  output_dir: str | None = None,
) -> Tokenizer:
  """Builds tokenizer `name`; sentencepiece trains on `training_texts` first.

  Args:
    name: one of TOKENIZERS.
    training_texts: normalized training texts (sentencepiece only).
    model_type: one of MODEL_TYPES (sentencepiece only).
    vocab_size: the SentencePiece vocabulary size to aim for (a soft limit:
      small data gives fewer pieces).
    output_dir: where sentencepiece saves its model (`sentencepiece.model`).

  Raises:
    UserError: unknown name or model type, or a missing package.
  """
  if name == "char":
    return Tokenizer(list, "".join)
  if name == "whitespace":
    return Tokenizer(str.split, " ".join)
  if name == "nltk":
    treebank = _import("nltk.tokenize.treebank", "nltk")
    words = treebank.TreebankWordTokenizer()
    return Tokenizer(words.tokenize, treebank.TreebankWordDetokenizer().detokenize)
  if name == "spacy":
    nlp = _import("spacy", "spacy").blank("en")
    return Tokenizer(lambda text: [token.text for token in nlp.tokenizer(text)], " ".join)
  if name == "sentencepiece":
    return _sentencepiece(training_texts, model_type=model_type, vocab_size=vocab_size, output_dir=output_dir)
  raise UserError(f"--tokenizer is {name!r}; use one of {', '.join(TOKENIZERS)}")


def _sentencepiece(
  texts: Sequence[str], *, model_type: str, vocab_size: int, output_dir: str | None
) -> Tokenizer:
  if model_type not in MODEL_TYPES:
    raise UserError(f"--model-type is {model_type!r}; use one of {', '.join(MODEL_TYPES)}")
  spm = _import("sentencepiece", "sentencepiece")
  if not texts:
    raise UserError("sentencepiece needs training text; the training split has no usable row")
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
    sentence_iterator=iter(texts),
    model_writer=model,
    model_type=model_type,
    # A soft limit: a small training split holds fewer pieces than asked for.
    vocab_size=vocab_size,
    hard_vocab_limit=False,
    # The texts are normalized already; SentencePiece's own NFKC would make
    # the pieces differ from the text they came from.
    normalization_rule_name="identity",
    # Every character of the training split gets a piece.
    character_coverage=1.0,
    # deephub's vocabulary assigns the ids (pad 0, OOV 1); SentencePiece only splits.
    bos_id=-1,
    eos_id=-1,
    minloglevel=2,
  )
  if output_dir:
    with open(os.path.join(output_dir, SENTENCEPIECE_MODEL), "wb") as f:
      f.write(model.getvalue())
  processor = spm.SentencePieceProcessor(model_proto=model.getvalue())

  def detokenize(pieces: Sequence[str]) -> str:
    return "".join(pieces).replace(_WORD_START, " ").strip()

  return Tokenizer(lambda text: processor.encode(text, out_type=str), detokenize)

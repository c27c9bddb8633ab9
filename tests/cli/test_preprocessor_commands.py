"""`deep preprocessor image|text` end to end: real files in, records, labels, metadata, training out."""

import csv
import json
import os
import pty
import random
import shlex
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from deephub.cli import main as deep
from deephub.io import metadata
from deephub.preprocess import image, text, tokenizers
from tests.cli_run import child_env, deep_command, run_deep
from tests.conftest import REPO
from tests.preprocess.test_image import _pixels, encode

CLASSES = ("bird", "cat", "dog")


def _photo_folders(root):
  """train/ and validation/ with JPEG, grayscale, PNG, CMYK-JPEG and two broken files in 3 classes."""
  files = {}
  for split, per_class in (("train", 4), ("validation", 2)):
    for index, name in enumerate(CLASSES):
      folder = root / split / name
      folder.mkdir(parents=True)
      for i in range(per_class):
        pixels = _pixels(20 + 4 * i, 28 + 2 * index, seed=index * 10 + i)
        fmt, mode, suffix = [("JPEG", None, "jpg"), ("JPEG", "L", "jpg"), ("PNG", "RGBA", "png"),
                             ("JPEG", "CMYK", "jpg")][i % 4]  # fmt: skip
        path = folder / f"{split}_{i}.{suffix}"
        path.write_bytes(encode(pixels, fmt, mode))
        files[str(path)] = (name, fmt, mode, pixels.shape)
  (root / "train" / "bird" / "truncated.jpg").write_bytes(encode(_pixels(), "JPEG")[:150])
  (root / "train" / "cat" / "notes.jpg").write_text("this is not a picture")
  return files


def _records(pattern):
  found = {}
  for path in sorted(tf.io.gfile.glob(pattern)):
    for record in tf.data.TFRecordDataset(path):
      example = tf.train.Example.FromString(record.numpy()).features.feature
      found[example["image/filename"].bytes_list.value[0].decode()] = example
  return found


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
  root = tmp_path_factory.mktemp("photos")
  return root, _photo_folders(root)


def _image_argv(root, out, *extra):
  return ["preprocessor", "image", "--train_directory", str(root / "train"),
          "--validation_directory", str(root / "validation"), "--output_directory", str(out),
          "--train_shards", "3", "--validation_shards", "2", *extra]  # fmt: skip


def test_image_records_labels_metadata_skip_list_and_exit_codes(photos, tmp_path, capsys):
  root, files = photos
  out = tmp_path / "out"
  assert deep.main(_image_argv(root, out, "--num_threads", "2")) == 0
  captured = capsys.readouterr()
  # The skip list, once, at the end; the run still succeeds.
  bad = [str(root / "train" / "bird" / "truncated.jpg"), str(root / "train" / "cat" / "notes.jpg")]
  assert "Skipped 2 files that do not decode:" in captured.err
  for path in bad:
    assert captured.err.count(path) == 1
  assert "Wrote 18 records in 5 shards" in captured.out and "converted 6 images to RGB JPEG" in captured.out

  assert sorted(os.listdir(out)) == [
    ".deep_preprocessor", "_tfrecord_metadata.json", "labels.txt", "train-00000-of-00003",
    "train-00001-of-00003", "train-00002-of-00003", "validation-00000-of-00002",
    "validation-00001-of-00002",
  ]  # fmt: skip
  assert (out / "labels.txt").read_text() == "bird\ncat\ndog\n"
  entries = metadata.read_metadata(str(out))
  assert sorted(entries) == [name for name in sorted(os.listdir(out)) if name.startswith(("train", "valid"))]
  for name, entry in entries.items():
    assert entry == metadata.scan_file(str(out / name))
  assert sum(metadata.record_counts(sorted(map(str, out.glob("train-*"))))) == 12

  records = {**_records(str(out / "train-*")), **_records(str(out / "validation-*"))}
  assert len(records) == len(files) == 18
  for path, (name, fmt, mode, shape) in files.items():
    split = "train" if "/train/" in path else "validation"
    feature = records[f"{name}/{os.path.basename(path)}"]
    value = {key: (f.bytes_list.value or f.int64_list.value)[0] for key, f in feature.items()}
    assert set(value) == {"image/encoded", "image/format", "image/class/label", "image/class/text",
                          "image/height", "image/width", "image/channels", "image/filename"}  # fmt: skip
    assert value["image/class/label"] == CLASSES.index(name)  # From 0, in labels.txt order.
    assert value["image/class/text"] == name.encode()
    assert (value["image/height"], value["image/width"]) == shape[:2]
    assert value["image/format"] == b"JPEG"
    original = open(path, "rb").read()
    if fmt == "JPEG" and mode != "CMYK":
      assert value["image/encoded"] == original  # Not re-encoded.
      assert value["image/channels"] == (1 if mode == "L" else 3)
    else:
      assert value["image/channels"] == 3
      assert tf.io.extract_jpeg_shape(value["image/encoded"]).numpy().tolist() == [*shape[:2], 3]
    assert split in {"train", "validation"}

  # --strict: the same output (every shard resumed), exit 1, the same list.
  mtimes = {name: os.stat(out / name).st_mtime_ns for name in entries}
  assert deep.main(["-l", "INFO", *_image_argv(root, out, "--strict")]) == 1
  captured = capsys.readouterr()
  assert "(5 complete shards kept from an earlier run)" in captured.out
  assert all(captured.err.count(path) == 1 for path in bad)
  assert mtimes == {name: os.stat(out / name).st_mtime_ns for name in entries}


@pytest.mark.parametrize(
  ("extra", "message"),
  [
    (["--train_shards", "40"], "--train_shards 40 is more than the 14 train images"),
    (["--labels_file", "/nonexistent"], "--labels_file /nonexistent does not exist"),
    (["--num_threads", "0"], "--num_threads is 0"),
  ],
)
def test_image_user_errors_are_one_line_exit_2(photos, tmp_path, capsys, extra, message):
  root, _ = photos
  assert deep.main([*_image_argv(root, tmp_path / "out"), *extra]) == 2
  err = capsys.readouterr().err
  assert err.startswith("deephub: error: ") and err.count("\n") == 1 and message in err


def test_image_variant_trains_and_evaluates_on_the_output(photos, tmp_path, capsys):
  root, _ = photos
  out, model_dir = tmp_path / "out", tmp_path / "model"
  assert deep.main(_image_argv(root, out)) == 0
  train_command = shlex.split(capsys.readouterr().out.split("Train on it with: ")[1])
  assert train_command[:4] == ["deep", "trainer", "train", "image_folder"]
  argv = train_command[1:] + [
    "-p", "model.model_dir", str(model_dir), "-p", "train.epochs", "1",
    "-p", "train.train_feeder.batch_size", "4", "-p", "train.eval_feeder.batch_size", "4",
  ]  # fmt: skip
  assert deep.main(argv) == 0
  assert os.path.isfile(model_dir / "model.ckpt-3.index")  # 12 images / batch 4.
  reader = tf.train.load_checkpoint(str(model_dir))
  assert reader.get_variable_to_shape_map()["cnn/logits/kernel"] == [64, 3]
  trained = capsys.readouterr().err.split("deephub: finished image_folder in ")[1].splitlines()[0]
  assert deep.main(["trainer", "evaluate", *argv[2:]]) == 0
  evaluated = capsys.readouterr().err.split("deephub: evaluated image_folder: ")[1].splitlines()[0]
  # The restored weights give the end-of-training evaluation again.
  assert evaluated.split(", global_step")[0] == trained.split(": ", 1)[1]
  # The export serves encoded images as the records hold them, decoded as in
  # training: its accuracy on the validation records is the evaluation's.
  assert deep.main(["trainer", "export", *argv[2:]]) == 0
  capsys.readouterr()
  (export,) = tf.io.gfile.glob(str(model_dir / "export" / "*" / "[0-9]*"))
  serve = tf.saved_model.load(export).signatures["serving_default"]
  records, labels = [], []
  for path in sorted(tf.io.gfile.glob(str(out / "validation-*"))):
    for record in tf.data.TFRecordDataset(path):
      records.append(record.numpy())
      labels.append(
        tf.train.Example.FromString(records[-1]).features.feature["image/class/label"].int64_list.value[0]
      )
  classes = serve(examples=tf.constant(records))["classes"].numpy().ravel()
  served_accuracy = float((classes == labels).mean())
  assert f"accuracy = {served_accuracy:.5g}" in evaluated, (served_accuracy, evaluated)
  # The raw signature takes the encoded bytes under a Python-safe name.
  encoded = [
    tf.train.Example.FromString(r).features.feature["image/encoded"].bytes_list.value[0] for r in records
  ]
  raw = tf.saved_model.load(export).signatures["predict_raw"](image_encoded=tf.constant(encoded))
  assert (raw["classes"].numpy().ravel() == classes).all()


def test_an_interrupted_image_run_resumes_to_the_same_output(tmp_path):
  root = tmp_path / "photos"
  files = _photo_folders(root)
  del files
  labels = image.read_labels(str(root / "train"), None)
  plans = image.plan_shards(
    "train", image.list_images(str(root / "train"), labels, {}), 4, str(tmp_path / "x")
  )
  # A FIFO in place of one image of the last train shard: reading it blocks, so
  # the run stops exactly there, after the first three shards, until killed.
  blocker = plans[-1].images[0].path
  content = open(blocker, "rb").read()
  os.remove(blocker)
  os.mkfifo(blocker)
  interrupted = tmp_path / "interrupted"
  argv = _image_argv(root, interrupted, "--num_threads", "1")
  argv[argv.index("--train_shards") + 1] = "4"
  child = subprocess.Popen(
    deep_command(*argv), cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
  )
  first = [f"train-0000{i}-of-00004" for i in range(3)]
  deadline = time.monotonic() + 240
  while not all((interrupted / name).exists() for name in first):
    assert child.poll() is None and time.monotonic() < deadline, child.communicate()
    time.sleep(0.2)
  child.send_signal(signal.SIGKILL)
  child.wait()
  assert not (interrupted / "_tfrecord_metadata.json").exists()  # Nothing describes a partial run.
  assert not (interrupted / "train-00003-of-00004").exists()
  mtimes = {name: os.stat(interrupted / name).st_mtime_ns for name in first}

  os.remove(blocker)
  with open(blocker, "wb") as f:
    f.write(content)
  assert deep.main(["-l", "INFO", *argv]) == 0
  assert mtimes == {name: os.stat(interrupted / name).st_mtime_ns for name in first}  # Kept, not rewritten.
  uninterrupted = tmp_path / "uninterrupted"
  argv[argv.index("--output_directory") + 1] = str(uninterrupted)
  assert deep.main(argv) == 0
  names = sorted(os.listdir(uninterrupted))
  assert names == sorted(os.listdir(interrupted)) and len(names) == 9  # No temp files left.
  for name in names:
    if name != ".deep_preprocessor":
      assert (interrupted / name).read_bytes() == (uninterrupted / name).read_bytes(), name


def _run_on_a_pty(argv):
  """Runs `deep ARGV` with stderr on a pseudo-terminal; returns (exit code, what the terminal showed)."""
  leader, follower = pty.openpty()
  env = child_env(TERM="xterm", COLUMNS="160")
  child = subprocess.Popen(deep_command(*argv), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=follower)
  os.close(follower)
  shown = b""
  while True:
    try:
      chunk = os.read(leader, 65536)
    except OSError:  # EIO: the child closed the terminal.
      break
    if not chunk:
      break
    shown += chunk
  os.close(leader)
  child.communicate(timeout=240)
  return child.returncode, shown.decode("utf-8", "replace")


def test_a_progress_bar_with_speed_and_eta_on_a_terminal_only(photos, tmp_path):
  root, _ = photos
  code, shown = _run_on_a_pty(_image_argv(root, tmp_path / "out"))
  assert code == 0
  assert "images/s" in shown and "ETA" in shown and "20/20" in shown  # 18 records and the 2 skipped files.
  piped = run_deep(*_image_argv(root, tmp_path / "piped"), timeout=240)
  assert piped.returncode == 0 and "images/s" not in piped.stderr and "ETA" not in piped.stderr


WORDS = {
  "pos": ["great", "loved", "wonderful", "très", "bien", "superb", "fantastic", "fun"],
  "neg": ["terrible", "hated", "awful", "schrecklich", "übel", "boring", "bad", "dull"],
}


def _write_csv(path, rows, seed, columns=("id", "sentence", "sentiment")):
  """Rows of 2-8 words drawn per label, some upper case or spaced oddly; every 25th misses a value."""
  rng = random.Random(seed)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    for i in range(rows):
      label = rng.choice(["pos", "neg"])
      words = [rng.choice(WORDS[label]) for _ in range(rng.randint(2, 8))]
      sentence = " ".join(words) + "."
      if i % 9 == 0:
        sentence = "  " + sentence.upper().replace(" ", "   ")
      if i % 25 == 3:
        sentence = ""
      if i % 25 == 7:
        label = ""
      writer.writerow([i, sentence, label])


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
  root = tmp_path_factory.mktemp("sentences")
  _write_csv(root / "train.csv", 300, seed=1)
  _write_csv(root / "validation.csv", 60, seed=2)
  return root


def _text_argv(root, out, *extra):
  return ["preprocessor", "text", str(root / "train.csv"), str(root / "validation.csv"), "--output-dir",
          str(out), "--text-column", "sentence", "--label-column", "sentiment", *extra]  # fmt: skip


def _rows(path):
  rows = []
  for record in tf.data.TFRecordDataset(path):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    rows.append((list(feature["text"].int64_list.value), list(feature["label"].int64_list.value)))
  return rows


def _csv_rows(path):
  with open(path, encoding="utf-8") as f:
    return [(tokenizers.normalize(r["sentence"]), r["sentiment"]) for r in csv.DictReader(f)
            if r["sentence"].strip() and r["sentiment"]]  # fmt: skip


def test_text_records_vocab_labels_stats_and_metadata(sentences, tmp_path, capsys):
  out = tmp_path / "out"
  argv = _text_argv(
    sentences, out, "--tokenizer", "whitespace", "--min-count-term", "1", "--max-row-length", "9"
  )
  assert deep.main(argv) == 0
  assert "train: 276 rows" in capsys.readouterr().out  # 300 less 24 rows missing a value.
  assert sorted(os.listdir(out)) == ["_tfrecord_metadata.json", "data_stats.json", "labels.json", "train.tfr",
                                     "validation.tfr", "vocab.json"]  # fmt: skip
  vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
  assert (vocab["<PAD>"], vocab["<OOV>"]) == (0, 1)
  assert "übel." in vocab or "übel" in vocab  # Non-ASCII survives.
  labels = json.loads((out / "labels.json").read_text())
  assert labels == {"neg": 0, "pos": 1}
  entries = metadata.read_metadata(str(out))
  assert {name: entry.total_records for name, entry in entries.items()} == {
    "train.tfr": 276,
    "validation.tfr": 54,
  }
  stats = json.loads((out / "data_stats.json").read_text())["splits"]
  assert stats["train"]["missing_rows"] == 24 and stats["train"]["oov_rate"] == 0.0
  assert sum(stats["train"]["length_histogram"].values()) == 276
  assert set(stats["train"]["length_histogram"]) <= {"2-3", "4-7", "8-15"}

  # The ids detokenize to the normalized text (rows that fit in 9 tokens), labels to their ids.
  words = {token_id: token for token, token_id in vocab.items()}
  for split in ("train", "validation"):
    for (ids, label), (normalized, name) in zip(
      _rows(str(out / f"{split}.tfr")), _csv_rows(sentences / f"{split}.csv"), strict=True
    ):
      assert len(ids) == 9 and label == [labels[name]]
      tokens = [words[i] for i in ids if i != 0]
      if len(normalized.split()) <= 9 and 1 not in ids:
        assert " ".join(tokens) == normalized
      else:
        assert tokens[:8] == [t if t in vocab else "<OOV>" for t in normalized.split()][:8]


@pytest.mark.parametrize(("min_count", "max_size"), [(1, 100_000), (20, 100_000), (1, 6), (5, 10)])
def test_vocab_obeys_min_count_and_max_size(sentences, tmp_path, min_count, max_size):
  out = tmp_path / "out"
  argv = _text_argv(sentences, out, "--min-count-term", str(min_count), "--max-vocab-size", str(max_size))
  assert deep.main(argv) == 0
  vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
  counts = {}
  for normalized, _ in _csv_rows(sentences / "train.csv"):
    for token in normalized.split():
      counts[token] = counts.get(token, 0) + 1
  eligible = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
  assert list(vocab) == ["<PAD>", "<OOV>", *eligible[: max_size - 2]]
  assert list(vocab.values()) == list(range(len(vocab)))


def test_text_missing_column_is_one_line_naming_the_columns(sentences, tmp_path, capsys):
  assert deep.main(_text_argv(sentences, tmp_path / "out")[:-4]) == 2  # Default columns text / label.
  err = capsys.readouterr().err
  assert err.count("\n") == 1
  assert "has no column 'text' (columns found: 'id', 'sentence', 'sentiment'); name the right one" in err


def test_text_variant_trains_and_evaluates_on_the_output(sentences, tmp_path, capsys):
  out, model_dir = tmp_path / "out", tmp_path / "model"
  assert deep.main(_text_argv(sentences, out, "--min-count-term", "2", "--max-row-length", "12")) == 0
  command = shlex.split(capsys.readouterr().out.split("Train on it with: ")[1])
  assert command[:4] == ["deep", "trainer", "train", "text_classifier"]
  argv = command[1:] + ["-p", "model.model_dir", str(model_dir), "-p", "train.epochs", "3",
                        "-p", "train.steps_per_loop", "10"]  # fmt: skip
  assert deep.main(argv) == 0
  assert os.path.isfile(model_dir / "model.ckpt-27.index")  # 3 epochs of ceil(276 / 32) = 9 steps.
  assert deep.main(["trainer", "evaluate", *argv[2:]]) == 0
  err = capsys.readouterr().err
  accuracy = float(err.split("deephub: evaluated text_classifier: ")[1].split("accuracy = ")[1].split(",")[0])
  assert accuracy > 0.8  # Each label has its own words: a few steps separate them.


@pytest.mark.parametrize("name", ["char", "whitespace", "nltk", "spacy", "sentencepiece"])
def test_every_tokenizer_writes_ids_that_map_back_to_its_tokens(sentences, tmp_path, name):
  out = tmp_path / "out"
  assert deep.main(_text_argv(sentences, out, "--tokenizer", name, "--min-count-term", "1",
                              "--max-row-length", "200")) == 0  # fmt: skip
  vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
  words = {token_id: token for token, token_id in vocab.items()}
  texts = [normalized for normalized, _ in _csv_rows(sentences / "train.csv")]
  tokenizer = tokenizers.make_tokenizer(name, training_texts=texts)
  for (ids, _), normalized in zip(_rows(str(out / "train.tfr")), texts, strict=True):
    tokens = [words[i] for i in ids if i != 0]
    assert tokens == tokenizer.tokenize(normalized)
    if name in ("char", "whitespace", "sentencepiece"):  # Lossless tokenizers.
      assert tokenizer.detokenize(tokens) == normalized
  if name == "sentencepiece":
    assert (out / "sentencepiece.model").is_file()


def test_max_sent_length_cuts_each_sentence():
  tokenizer = tokenizers.make_tokenizer("whitespace")
  assert text.tokenize("a b c. d e f g! h", tokenizer, max_sent_length=2) == ["a", "b", "d", "e", "h"]
  assert text.tokenize("a b c. d e", tokenizer, max_sent_length=None) == ["a", "b", "c.", "d", "e"]


def test_token_ids_pad_and_cut():
  vocab = {"<PAD>": 0, "<OOV>": 1, "a": 2}
  assert text.token_ids(["a", "zz"], vocab, 4) == [2, 1, 0, 0]
  assert text.token_ids(["a"] * 6, vocab, 4) == [2, 2, 2, 2]


def test_a_missing_tokenizer_package_is_one_line_with_the_install_command(
  sentences, tmp_path, capsys, monkeypatch
):
  monkeypatch.setitem(sys.modules, "sentencepiece", None)  # import sentencepiece now raises ImportError.
  assert deep.main(_text_argv(sentences, tmp_path / "out", "--tokenizer", "sentencepiece")) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "pip install 'deephub[text]'" in err

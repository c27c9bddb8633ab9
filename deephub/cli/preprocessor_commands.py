"""`deep preprocessor image|text`: raw files to TFRecords the variants train on.

The work is in `deephub.preprocess.image` / `.text`; this module parses the
flags, draws the progress bar and prints the summary and the command that
trains on the output. TensorFlow is imported only once a command runs.
"""

import argparse
import os
import shlex
import sys

from deephub.cli.commands import Command


def _quiet_tensorflow(args: argparse.Namespace) -> None:
  """Hides TensorFlow's C++ log lines for bad images (the skip list reports them) unless -l is given."""
  if args.logging_level is None:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"


def _image_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--train_directory", required=True, metavar="DIR", help="folder of class subfolders")
  parser.add_argument("--validation_directory", metavar="DIR", help="folder of class subfolders (optional)")
  parser.add_argument("--output_directory", required=True, metavar="DIR", help="where the shards go")
  parser.add_argument("--train_shards", type=int, default=8, metavar="N", help="train shards (default 8)")
  parser.add_argument(
    "--validation_shards", type=int, default=2, metavar="N", help="validation shards (default 2)"
  )
  parser.add_argument(
    "--num_threads", type=int, default=os.cpu_count() or 1, metavar="N",
    help="shards written at once (default: the CPU count)",
  )  # fmt: skip
  parser.add_argument(
    "--labels_file", metavar="FILE",
    help="class-folder names, one per line; label i is line i, from 0 (default: sorted subfolders)",
  )  # fmt: skip
  parser.add_argument(
    "--map_file", metavar="FILE", help="lines '<class folder> <readable name>' for image/class/text"
  )
  parser.add_argument(
    "--strict", action="store_true", help="exit 1 when an image does not decode (it is skipped either way)"
  )


def _image(args: argparse.Namespace) -> int:
  _quiet_tensorflow(args)
  from deephub.cli.progress import ProgressBar
  from deephub.preprocess import image

  with ProgressBar("images", "images") as bar:
    report = image.preprocess(
      train_directory=args.train_directory,
      validation_directory=args.validation_directory,
      output_directory=args.output_directory,
      train_shards=args.train_shards,
      validation_shards=args.validation_shards,
      num_threads=args.num_threads,
      labels_file=args.labels_file,
      map_file=args.map_file,
      on_start=bar.start,
      on_image=bar.advance,
    )
  resumed = [shard for shard in report.shards if shard.resumed]
  total = sum(shard.records for shard in report.shards)
  print(
    f"Wrote {total} records in {len(report.shards)} shards to {args.output_directory} "
    f"({len(resumed)} complete shards kept from an earlier run), {len(report.labels)} classes in "
    f"labels.txt; converted {len(report.converted)} images to RGB JPEG"
    + ("" if not report.converted or args.logging_level else " (list them with -l INFO)")
  )
  skipped = report.skipped
  if skipped:
    print(f"Skipped {len(skipped)} files that do not decode:", file=sys.stderr)
    for path, reason in skipped:
      print(f"  {path}: {reason}", file=sys.stderr)
  out = os.path.abspath(args.output_directory)
  command = [
    "deep", "trainer", "train", "image_folder", "-p", "model.num_classes", str(len(report.labels)),
    "-p", "train.train_feeder.file_patterns", os.path.join(out, "train-*"),
  ]  # fmt: skip
  # Without validation images the variant evaluates on the train shards.
  evaluate_on = "validation-*" if args.validation_directory else "train-*"
  command += ["-p", "train.eval_feeder.file_patterns", os.path.join(out, evaluate_on)]
  print("Train on it with: " + shlex.join(command))
  return 1 if skipped and args.strict else 0


def _text_arguments(parser: argparse.ArgumentParser) -> None:
  from deephub.preprocess.tokenizers import MODEL_TYPES, TOKENIZERS  # No TensorFlow in there.

  parser.add_argument("training_split", metavar="TRAINING_SPLIT", help="CSV file the vocabulary comes from")
  parser.add_argument("extra_splits", metavar="EXTRA_SPLITS", nargs="*", help="more CSV files (dev, test)")
  parser.add_argument("--output-dir", required=True, metavar="DIR", help="where the files go")
  parser.add_argument("--text-column", default="text", metavar="NAME", help="CSV column of the text")
  parser.add_argument("--label-column", default="label", metavar="NAME", help="CSV column of the label")
  parser.add_argument("--tokenizer", default="whitespace", choices=TOKENIZERS, help="default whitespace")
  parser.add_argument("--min-count-term", type=int, default=5, metavar="N", help="default 5")
  parser.add_argument(
    "--max-vocab-size", type=int, default=100_000, metavar="N", help="pad and OOV included (default 100000)"
  )
  parser.add_argument(
    "--max-row-length", type=int, default=15, metavar="N", help="token ids per record, cut or padded (15)"
  )
  parser.add_argument("--max-sent-length", type=int, metavar="N", help="cut each sentence to N tokens")
  parser.add_argument("--pad-token", default="<PAD>", help="token of id 0")
  parser.add_argument("--oov-token", default="<OOV>", help="token of id 1")
  parser.add_argument(
    "--model-type", default="unigram", choices=MODEL_TYPES, help="sentencepiece model (default unigram)"
  )


def _text(args: argparse.Namespace) -> int:
  _quiet_tensorflow(args)
  from deephub.cli.progress import ProgressBar
  from deephub.preprocess import text

  with ProgressBar("rows", "rows") as bar:
    report = text.preprocess(
      csv_files=[args.training_split, *args.extra_splits],
      output_dir=args.output_dir,
      text_column=args.text_column,
      label_column=args.label_column,
      tokenizer=args.tokenizer,
      min_count_term=args.min_count_term,
      max_vocab_size=args.max_vocab_size,
      max_row_length=args.max_row_length,
      max_sent_length=args.max_sent_length,
      pad_token=args.pad_token,
      oov_token=args.oov_token,
      model_type=args.model_type,
      on_split=lambda name, rows: bar.start(rows, name),
      on_row=bar.advance,
    )
  for name, stats in report.stats.items():
    print(
      f"{name}: {stats['rows']} rows, {stats['tokens']} tokens, OOV rate {stats['oov_rate']:.3f}, "
      f"skipped {stats['missing_rows']} rows with a missing value and {stats['unknown_label_rows']} "
      "with a label the training split lacks"
    )
  out = os.path.abspath(args.output_dir)
  command = [
    "deep", "trainer", "train", "text_classifier",
    "-p", "model.vocab_size", str(report.vocab_size), "-p", "model.num_classes", str(report.num_classes),
    "-p", "train.train_feeder.file_patterns", os.path.join(out, report.files[0]),
    "-p", "train.eval_feeder.file_patterns", os.path.join(out, report.files[-1]),
  ]  # fmt: skip
  if args.max_row_length != 15:
    command += ["-p", "train.train_feeder.features_map.text.shape", f"[{args.max_row_length}]",
                "-p", "train.eval_feeder.features_map.text.shape", f"[{args.max_row_length}]"]  # fmt: skip
  print(
    f"Wrote {', '.join(report.files)}, vocab.json ({report.vocab_size} tokens), labels.json "
    f"({report.num_classes} labels) and data_stats.json to {args.output_dir}"
  )
  print("Train on it with: " + shlex.join(command))
  return 0


COMMANDS = [
  Command("image", "class folders of images to sharded tf.Example TFRecords", _image_arguments, _image),
  Command("text", "CSV text and labels to token-id TFRecords with a vocabulary", _text_arguments, _text),
]

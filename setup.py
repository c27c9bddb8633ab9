"""deephub: TensorFlow 2 experimentation framework (see README.md).

The native ops (deephub/ops) are compiled here by BuildNativeOps; see README "Native ops".
"""

import importlib.util
import os
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildNativeOps(build_ext):
  """Compiles deephub/ops with g++ and TensorFlow's flags (deephub/ops/build.py), not distutils.

  pyproject.toml puts TensorFlow in the build requirements, so it is
  importable here under pip's build isolation. A failure (no compiler, no
  TensorFlow with --no-build-isolation) does not fail the install: the
  package ships without the library, and deephub builds it into a per-user
  cache on first use, or warns once and uses its pure-TensorFlow paths.
  """

  def build_extensions(self):
    path = os.path.join(HERE, "deephub", "ops", "build.py")
    spec = importlib.util.spec_from_file_location("deephub_ops_build", path)
    ops_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ops_build)
    built = []
    for extension in self.extensions:
      try:
        info = ops_build.compile_library(self.get_ext_fullpath(extension.name))
        print(f"deephub: built the native ops ({info})", file=sys.stderr)
        built.append(extension)
      except (ImportError, ops_build.BuildError) as error:
        print(f"WARNING: deephub native ops not built ({error}); built on first use instead", file=sys.stderr)
    self.extensions = built  # Later steps copy only what exists.


# `deep hpt`: Optuna runs the search (samplers, pruners, a study in any
# SQLAlchemy database); psycopg (3, with its wheels' libpq) lets workers on
# many machines share one study in PostgreSQL: SQLAlchemy 2.1 maps
# postgresql:// to it. Optuna 4 and 5 keep the storage API deephub uses.
HPT = ["optuna>=4,<6", "psycopg[binary]"]

# Tokenizers of `deep preprocessor text` beyond char and whitespace, imported
# only when chosen: nltk's TreebankWordTokenizer and spaCy's blank English
# tokenizer need no model download; sentencepiece trains its own model.
TEXT_EXTRA = ["nltk", "spacy", "sentencepiece"]

setup(
  name="deephub",
  version="0.1.0",
  description="Train and evaluate TensorFlow 2 variants in Estimator-compatible model_dirs.",
  long_description=open("README.md", encoding="utf-8").read(),
  long_description_content_type="text/markdown",
  python_requires=">=3.11",
  # configs/ lives at the repository root for users to edit; installed, it
  # becomes deephub/configs so `--variant=toy` works without a checkout.
  packages=find_packages(include=["deephub", "deephub.*"]) + ["deephub.configs", "deephub.configs.variants"],
  package_dir={"deephub.configs": "configs"},
  package_data={
    # Both toy datasets (plain and GZIP) with their _tfrecord_metadata.json.
    "deephub": ["resources/blobs/data/toy/*", "resources/blobs/data/compressed_toy/*", "ops/*.cc", "ops/*.h"],
    # Legacy YAML variants and the feeder files they extend.
    "deephub.configs": ["*.py", "variants/*.py", "variants/*.yaml", "feeders/*.yaml"],
  },
  # The native TFRecord ops; their sources ship too (package_data), so a
  # library for another TensorFlow can be rebuilt on first use.
  ext_modules=[Extension("deephub.ops._tfrecord_ops", sources=["deephub/ops/tfrecord_ops.cc"])],
  cmdclass={"build_ext": BuildNativeOps},
  install_requires=[
    "tensorflow>=2.17,<2.22",
    "absl-py",
    "ml-collections",
    # experiment_params.yaml is written with yaml.safe_dump; legacy YAML
    # variants are read with its safe constructor. (The metayaml package, and
    # the Jinja2 it pulled in, are no longer used: deephub reads their format
    # itself, see deephub/config/yaml_variants.py.)
    "PyYAML",
    # TensorFlow 2.21 no longer pulls it in; we promise TensorBoard plots.
    "tensorboard",
    # `deep preprocessor` progress bars; Keras needs it too, so it costs nothing extra.
    "rich",
    # The live progress line on terminals (training, `deep utils` scans):
    # tqdm rather than rich: one small pure-Python package with no
    # dependencies that imports in about half rich.progress' time.
    "tqdm",
  ],
  extras_require={
    "test": [
      "pytest",
      "pytest-benchmark",
      "ruff",
      # MemorySamplesFeeder accepts DataFrames (pandas stays optional for users).
      "pandas",
      # Property tests: hostile -p / --config. / YAML inputs give a config or a clear error.
      "hypothesis",
      # tests/io/test_features.py writes the JPEG/PNG/GIF/BMP images it decodes.
      "pillow",
      # tests/test_api.py trains deephub.train_and_evaluate on its bundled digits
      # (load_digits reads a file shipped in the wheel: no download).
      "scikit-learn",
      # tests/hpt run real studies (SQLite and PostgreSQL).
      *HPT,
      # The text extra, so every `deep preprocessor text --tokenizer` is tested.
      *TEXT_EXTRA,
    ],
    "hpt": HPT,
    "text": TEXT_EXTRA,
    # s3://, hdfs://, az:// and http(s):// filesystems and the Parquet feeder.
    # tensorflow-io 0.37.1's compiled ops load only on TensorFlow 2.17 (2.18+
    # fails with undefined symbols), and its wheels are built against numpy 1.
    "io": ["tensorflow>=2.17,<2.18", "tensorflow-io==0.37.1", "numpy<2"],
    # The io tests run a real S3 API server (moto's server mode) on 127.0.0.1
    # and create buckets with boto3; pyarrow writes the Parquet test files
    # (pyarrow 26 refuses the numpy 1 that tensorflow-io needs; 21 accepts it).
    "io-test": ["moto[server]", "boto3", "pyarrow<22"],
  },
  entry_points={"console_scripts": ["deephub-train=deephub.train:run", "deep=deephub.cli.main:run"]},
)

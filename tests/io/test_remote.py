"""deephub.io.remote in the main environment, where tensorflow-io is not installed.

The io suite (tests/io/test_s3.py) covers the loaded case against a real S3 server.
"""

import sys
import textwrap

import pytest

from deephub.errors import UserError
from deephub.io import remote
from tests.conftest import run_cli

INSTALL = "python -m pip install 'tensorflow>=2.17,<2.18' 'tensorflow-io==0.37.1' 'numpy<2'"


@pytest.mark.parametrize(
  "path, expected",
  [
    ("s3://bucket/key", "s3"),
    ("S3://bucket/key", "s3"),
    ("hdfs://namenode:8020/data/*", "hdfs"),
    ("gs://bucket/run", "gs"),
    ("/tmp/run", ""),
    ("relative/run", ""),
    ("C:/data", ""),
    ("weird name://x", ""),
    ("s3a+v2://bucket", "s3a+v2"),
  ],
)
def test_scheme(path, expected):
  assert remote.scheme(path) == expected


@pytest.mark.parametrize(
  "path", ["/tmp/run", "relative/*.tfrecord", "gs://bucket/run", "ram://x", "file:///tmp/x"]
)
def test_core_filesystems_need_nothing(path, monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_io", None)  # Would fail if it were imported.
  remote.ensure_filesystem(path, where="model.model_dir")


def test_unknown_scheme_names_the_supported_ones():
  expected = (
    r"model.model_dir 'ftp://h/x' has scheme ftp://, which no filesystem provides; use a local path, gs://"
  )
  with pytest.raises(UserError, match=expected + r" or one of s3://, hdfs://"):
    remote.ensure_filesystem("ftp://h/x", where="model.model_dir")


def test_missing_tensorflow_io_says_what_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_io", None)  # As if not installed.
  with pytest.raises(UserError) as error:
    remote.ensure_filesystems(
      {"model.model_dir": "/tmp/local", "train.warm_start_check_point": "s3://b/ckpt"}
    )
  message = str(error.value)
  assert message.startswith(
    "train.warm_start_check_point 's3://b/ckpt' needs tensorflow-io, which is not installed"
  )
  assert "works only with tensorflow 2.17" in message and message.endswith(INSTALL)


def test_tensorflow_io_that_cannot_load_says_why(tmp_path, monkeypatch):
  # Reproduces what tensorflow-io 0.37.1 does on tensorflow 2.21 (checked by
  # hand): the import only warns, the lazily loaded ops library then raises
  # NotImplementedError naming the undefined symbol, and no s3 is registered.
  ops = tmp_path / "tensorflow_io" / "python" / "ops"
  ops.mkdir(parents=True)
  (tmp_path / "tensorflow_io" / "__init__.py").write_text("")
  (tmp_path / "tensorflow_io" / "python" / "__init__.py").write_text("")
  (ops / "__init__.py").write_text(
    textwrap.dedent("""
    import warnings
    warnings.warn("unable to load libtensorflow_io_plugins.so: undefined symbol: _ZN3tsl5mutex6unlockEv")

    class _Lazy:
      def __getattr__(self, name):
        raise NotImplementedError(
          "unable to open file: libtensorflow_io.so, from paths: ['/x/libtensorflow_io.so']\\n"
          "caused by: ['/x/libtensorflow_io.so: "
          "undefined symbol: _ZNK10tensorflow4data11DatasetBase8FinalizeE']")

    core_ops = _Lazy()
  """)
  )
  monkeypatch.syspath_prepend(str(tmp_path))
  for name in [m for m in sys.modules if m.startswith("tensorflow_io")]:
    monkeypatch.delitem(sys.modules, name)
  with pytest.raises(UserError) as error:
    remote.load_tensorflow_io(needed_for="feeder type 'ParquetExamplesFeeder'")
  message = str(error.value)
  assert "whose libraries do not load on tensorflow" in message
  assert "(undefined symbol _ZNK10tensorflow4data11DatasetBase8FinalizeE)" in message
  assert message.endswith(f"it works only with tensorflow 2.17: {INSTALL}")


def test_cli_with_s3_model_dir_without_tensorflow_io_is_one_line(tmp_path):
  # The main environment has no tensorflow-io (it needs tensorflow 2.17).
  result = run_cli("--variant=toy", "--config.model.model_dir=s3://bucket/run", cwd=str(tmp_path))
  assert result.returncode == 2, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("deephub: error: model.model_dir 's3://bucket/run' needs tensorflow-io")
  assert last.endswith(INSTALL) and "Traceback" not in result.stderr

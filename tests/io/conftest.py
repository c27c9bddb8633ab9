"""Fixtures for the io suite: a real S3 API server (moto) on 127.0.0.1, fresh buckets.

The server is moto's server mode in a child process on a free port, started
once per session. tensorflow-io's S3 client reads its settings from the
environment when it first connects, so they are set for the whole session
(and inherited by the CLI processes the tests start).
"""

import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from deephub import clean_exit
from deephub.io import remote

_ACCESS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen, log_path, timeout_secs: float = 60) -> None:
  deadline = time.monotonic() + timeout_secs
  while time.monotonic() < deadline:
    if server.poll() is not None:
      raise RuntimeError(f"moto server exited with {server.returncode}: {open(log_path).read()[-2000:]}")
    try:
      urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
      return
    except OSError:
      time.sleep(0.2)
  raise RuntimeError(f"moto server at {url} did not answer within {timeout_secs} s")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
  """Starts moto's S3 server on 127.0.0.1 and points tensorflow-io and boto3 at it."""
  port = _free_port()
  # moto logs every request: to a file, since an unread pipe fills up and
  # stalls the server mid-test.
  log_path = tmp_path_factory.mktemp("moto") / "server.log"
  with open(log_path, "w") as log:
    server = subprocess.Popen(
      [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
      stdout=log,
      stderr=subprocess.STDOUT,
    )
  url = f"http://127.0.0.1:{port}"
  try:
    _wait_until_up(url, server, log_path)
    with pytest.MonkeyPatch.context() as patch:
      # What tensorflow-io 0.37.1 reads: the endpoint (a full URL works), plain
      # HTTP without TLS checks, credentials and region.
      for key, value in {**_ACCESS, "S3_ENDPOINT": url, "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0"}.items():
        patch.setenv(key, value)
      # The test process itself reads and writes s3:// too.
      remote.load_tensorflow_io(needed_for="the io tests")
      yield url
  finally:
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def s3_bucket(s3_endpoint):
  """A new empty bucket; returns 's3://<name>'."""
  import boto3

  name = f"deephub-{uuid.uuid4().hex[:12]}"
  boto3.client("s3", endpoint_url=s3_endpoint, region_name=_ACCESS["AWS_REGION"]).create_bucket(Bucket=name)
  return f"s3://{name}"


@pytest.fixture
def upload(s3_endpoint):
  """`upload(local_path, 's3://bucket/key')` through boto3, independent of the code under test."""
  import boto3

  client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=_ACCESS["AWS_REGION"])

  def _upload(local_path: str, url: str) -> None:
    bucket, key = url.removeprefix("s3://").split("/", 1)
    client.upload_file(local_path, bucket, key)

  return _upload


_exit_status = {}


def pytest_sessionfinish(session, exitstatus):
  _exit_status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
  """Keeps pytest's exit code: tensorflow-io's S3 client can abort Python's teardown (see clean_exit)."""
  if "code" in _exit_status and clean_exit.tensorflow_io_loaded():
    clean_exit.exit_now(_exit_status["code"])

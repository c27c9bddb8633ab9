"""Reading one YAML file: regular files only, once, within size, depth and node limits."""

import os
import socket

import pytest

from deephub.config import yaml_files
from deephub.errors import UserError


def test_plain_yaml_is_read(tmp_path):
  path = tmp_path / "v.yaml"
  path.write_text("model: {type: 'toy:X', sizes: [1, 2.5, null, true]}\n")
  assert yaml_files.parse(yaml_files.read_bytes(str(path)), str(path)) == {
    "model": {"type": "toy:X", "sizes": [1, 2.5, None, True]}
  }


@pytest.mark.parametrize("kind", ["folder", "device", "socket", "missing"])
def test_only_regular_files_are_read(tmp_path, kind):
  path = str(tmp_path / "x.yaml")
  if kind == "folder":
    os.mkdir(path)
  elif kind == "device":
    path = "/dev/zero"  # Endless: reading it would never finish.
  elif kind == "socket":
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
  message = "No such file" if kind == "missing" else "is not a regular file"
  with pytest.raises(UserError, match=message):
    yaml_files.read_bytes(path)


@pytest.mark.parametrize(
  "text, problem",
  [
    ("a: &x 1\nb: *x\n", r"is refused \(line 1\): YAML anchors"),
    ("a: !!python/name:os.system\n", r"is refused \(line 1\): could not determine a constructor"),
    ("a: !!binary AAAA\nb: !custom 1\n", r"is refused \(line 2\): could not determine a constructor"),
    ("a: [1,\n", r"is refused \(line 2\)"),
    ("a: " + "[" * 33 + "]" * 33 + "\n", r"nested deeper than 32 levels"),
    ("a: [" + "1, " * yaml_files.MAX_NODES + "]\n", r"more than 100000 values"),
    ("a: 1" + "0" * 5000 + "\n", r"a value cannot be read \(ValueError\)"),
  ],
)
def test_limits_and_tags_are_one_line_errors(tmp_path, text, problem):
  with pytest.raises(UserError, match=problem) as error:
    yaml_files.parse(text.encode(), "v.yaml")
  assert str(error.value).startswith("v.yaml") and "\n" not in str(error.value)


def test_an_error_does_not_echo_the_file(tmp_path):
  with pytest.raises(UserError) as error:
    yaml_files.parse(b"secret_password_here: [\n", "v.yaml")
  assert "secret_password" not in str(error.value)


def test_a_file_growing_past_the_cap_after_the_fstat_is_refused(tmp_path, monkeypatch):
  path = tmp_path / "v.yaml"
  path.write_bytes(b"# eight\n")
  real_fstat = os.fstat

  def fstat_before_growth(fd):  # Reports the size before the file grew.
    info = real_fstat(fd)
    return os.stat_result((*info[:6], 0, *info[7:10]))

  monkeypatch.setattr(os, "fstat", fstat_before_growth)
  monkeypatch.setattr(yaml_files, "MAX_FILE_BYTES", 4)
  with pytest.raises(UserError, match="is over 0 MB"):
    yaml_files.read_bytes(str(path))

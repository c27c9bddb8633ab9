"""Which RUNNING trials count as orphaned: their worker is gone from this host, or silent too long."""

import datetime
import os
import socket
import subprocess
import sys
import types

import pytest

from deephub.hpt import records, study

NOW = 1_000_000.0
HOST = socket.gethostname()


def _dead_pid() -> int:
  child = subprocess.Popen([sys.executable, "-c", ""])
  child.wait()
  return child.pid  # Reaped: no such process now.


def _trial(owner=None, heartbeat=None, started=NOW):
  attrs = {}
  if owner is not None:
    attrs[records.OWNER_ATTR] = owner
  if heartbeat is not None:
    attrs[records.HEARTBEAT_ATTR] = heartbeat
  return types.SimpleNamespace(system_attrs=attrs, datetime_start=datetime.datetime.fromtimestamp(started))


@pytest.mark.parametrize(
  "owner, heartbeat, started, orphaned",
  [
    (f"{HOST} {os.getpid()}", NOW - 1, NOW, False),  # Alive here, beating.
    (f"{HOST} {os.getpid()}", NOW - study.STALE_SECS - 1, NOW, True),  # Alive but hung: silent too long.
    ("other-host 1", NOW - 1, NOW, False),  # Another machine, beating.
    ("other-host 1", NOW - study.STALE_SECS - 1, NOW, True),  # Another machine, silent.
    (None, None, NOW - 1, False),  # Just asked for, no heartbeat yet.
    (None, None, NOW - study.STALE_SECS - 1, True),  # Died before its first heartbeat.
  ],
)
def test_is_orphaned(owner, heartbeat, started, orphaned):
  assert study.is_orphaned(_trial(owner, heartbeat, started), NOW) is orphaned


def test_a_dead_process_on_this_host_is_orphaned_at_once():
  assert study.is_orphaned(_trial(f"{HOST} {_dead_pid()}", NOW), NOW)


@pytest.mark.parametrize(
  "url, shown",
  [
    ("postgresql://user:secret@db:5432/x", "postgresql://user:***@db:5432/x"),
    ("postgresql://user@db/x", "postgresql://user@db/x"),
    ("sqlite:////tmp/a@b/study.db", "sqlite:////tmp/a@b/study.db"),
  ],
)
def test_passwords_are_hidden_in_messages(url, shown):
  assert study._hide_password(url) == shown

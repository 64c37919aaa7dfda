"""`make test` on a machine with no PostgreSQL at the configured URL starts its own throwaway
cluster, runs the command against it, passes the command's exit status on, and removes the
cluster afterwards; a server that answers is used as it is (issue 23)."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ADMIN_URL

WRAPPER = Path(__file__).with_name("throwaway_postgres.py")
# Prints the URL it was given and a fact only a live server knows, then exits 3.
PROBE = ("import os, sys, psycopg; url = os.environ['HASHGUARD_TEST_POSTGRES']; print(url); "
         "print(psycopg.connect(url).execute('select current_setting(\\'port\\')').fetchone()[0]);"
         " sys.exit(3)")


def _run(url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HASHGUARD_TEST_POSTGRES=url)
    return subprocess.run([sys.executable, str(WRAPPER), "--", sys.executable, "-c", PROBE],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_nothing_listening_starts_a_throwaway_cluster_and_removes_it():
    before = set(glob.glob("/tmp/hashguard-pg-*"))
    done = _run("postgresql://postgres@127.0.0.1:1/test")  # port 1: nothing listens there
    assert done.returncode == 3, done.stderr  # the command's own status
    url, port = done.stdout.split()
    assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith(f":{port}/test")
    assert port != "1"
    assert "throwaway cluster" in done.stderr
    assert set(glob.glob("/tmp/hashguard-pg-*")) == before  # removed afterwards


def test_a_server_that_answers_is_used_as_it_is():
    done = _run(ADMIN_URL)
    assert done.returncode == 3, done.stderr
    assert done.stdout.split()[0] == ADMIN_URL
    assert "throwaway" not in done.stderr

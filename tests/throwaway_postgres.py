"""Run a command (the test suite) against PostgreSQL, starting a throwaway cluster when none answers.

Usage: python tests/throwaway_postgres.py -- COMMAND...

Why: every database test runs on PostgreSQL as well as SQLite (production is PostgreSQL), and
on a fresh Debian machine with no server at HASHGUARD_TEST_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/test) every one of them used to error with "PostgreSQL is not
reachable" (issue 23). Now, when nothing answers at that URL, this:
1. finds PostgreSQL's server programs (Debian's /usr/lib/postgresql/<version>/bin), installing
   Debian's `postgresql` package when they are missing — waiting for the package lock, not
   failing, when another install holds it;
2. creates a cluster in a temporary folder (owned by the `postgres` user when run as root, as
   initdb refuses root), trust authentication, listening only on 127.0.0.1 at a free port, with
   fsync off (the data is thrown away; it only has to be fast);
3. runs COMMAND with HASHGUARD_TEST_POSTGRES and HASHGUARD_BENCH_POSTGRES pointing at it;
4. stops the cluster and removes its folder, whatever COMMAND did, and exits with its status.
A server that answers at the configured URL is used as it is: nothing is installed or started.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
APT_LOCK_WAIT_SECONDS = 900


def say(message: str) -> None:
    print(f"throwaway_postgres: {message}", file=sys.stderr, flush=True)


def answers(url: str) -> bool:
    """Whether a PostgreSQL server accepts connections for `url` (its database may not exist)."""
    import psycopg  # the test extra's driver; imported late so --help works without it

    try:
        psycopg.connect(url, connect_timeout=3).close()
        return True
    except psycopg.OperationalError as error:
        # A server that says the database does not exist is up: conftest creates what it needs
        # from the `test` database, so report it as not answering only when nothing listens.
        return "does not exist" in str(error)


def server_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def install_postgresql() -> None:
    say("no PostgreSQL server programs found: installing Debian's postgresql package")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    wait = ["-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT_SECONDS}"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*sudo, "apt-get", *wait, "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", *wait, "install", "-y", "-qq", "postgresql"],
                   check=True, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_cluster_owner(command: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: run them as `postgres` (Debian's package
    creates that user) when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def run_with_cluster(command: list[str]) -> int:
    bindir = server_bin()
    if bindir is None:
        install_postgresql()
        bindir = server_bin()
        if bindir is None:
            say("PostgreSQL's server programs are still missing after the install")
            return 2
    folder = tempfile.mkdtemp(prefix="hashguard-pg-")
    data = os.path.join(folder, "data")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/test"
    started = False
    try:
        subprocess.run(as_cluster_owner([f"{bindir}/initdb", "-D", data, "-U", "postgres",
                                         "--auth=trust", "-E", "UTF8", "--no-sync",
                                         "--no-instructions"]),
                       check=True, stdout=subprocess.DEVNULL)
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        subprocess.run(as_cluster_owner([f"{bindir}/pg_ctl", "-D", data, "-w", "-s", "-o", options,
                                         "-l", os.path.join(folder, "server.log"), "start"]),
                       check=True)
        started = True
        subprocess.run(as_cluster_owner([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port),
                                         "-U", "postgres", "test"]), check=True)
        say(f"started a throwaway cluster at 127.0.0.1:{port} (removed afterwards)")
        env = dict(os.environ, HASHGUARD_TEST_POSTGRES=url, HASHGUARD_BENCH_POSTGRES=url)
        return subprocess.run(command, env=env).returncode
    finally:
        if started:
            subprocess.run(as_cluster_owner([f"{bindir}/pg_ctl", "-D", data, "-w", "-s", "-m",
                                             "fast", "stop"]), check=False)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    url = os.environ.get("HASHGUARD_TEST_POSTGRES", DEFAULT_URL)
    if answers(url):
        return subprocess.run(command).returncode
    where = urlsplit(url)
    say(f"nothing answers at {where.hostname}:{where.port or 5432}: using a throwaway cluster")
    return run_with_cluster(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The peers' virtual environment: HMA and python-threatexchange from the unmodified source
snapshots in ../shared/peers, plus hashguard's client and the hashguard-pytx extension, each
pip-installed as a platform would (never into hashguard's own environment).

Built once and cached under .peers-cache/ (git-ignored), keyed by the snapshots' hashes, the
Python version and the dependency lists it installs. hashguard and the
extension are reinstalled (without dependencies, seconds) whenever their sources change, so a
test always runs the code of the work tree.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = Path(os.environ.get("HASHGUARD_PEERS_DIR", PROJECT_ROOT.parent / "shared" / "peers"))
CACHE_DIR = Path(os.environ.get("HASHGUARD_PEERS_CACHE", PROJECT_ROOT / ".peers-cache"))
HMA_TARBALL = "hasher-matcher-actioner-baefb4ed.tar.gz"
PYTX_TARBALL = "python-threatexchange-baefb4ed.tar.gz"
EXTENSION = PROJECT_ROOT / "clients" / "pytx"
# What the quick reinstall covers: the `hashguard` distribution's packages and the extension.
LOCAL_SOURCES = ("hashing", "partner_tools", "clients/pytx/hashguard_pytx")
PIP_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class PeerEnv:
    venv: Path
    hma_src: Path  # HMA's src/ (its migrations live there; installed editable, as documented)
    build_seconds: float  # 0 when the cached environment was reused as it was
    rebuilt: str  # "full", "local" (hashguard + extension only) or "" (reused)

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT)
                     else path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _dependencies_key() -> str:
    """What the heavy step installs from the two pyproject files: their dependency lists only,
    so that editing anything else (pytest markers, say) does not rebuild the environment."""
    wanted = []
    for pyproject in (PROJECT_ROOT / "pyproject.toml", EXTENSION / "pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        wanted.append([project.get("dependencies", []), project.get("optional-dependencies", {})])
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:16]


def _local_files() -> list[Path]:
    files = [PROJECT_ROOT / "pyproject.toml", EXTENSION / "pyproject.toml"]
    for folder in LOCAL_SOURCES:
        files += sorted(p for p in (PROJECT_ROOT / folder).rglob("*.py")
                        if "__pycache__" not in p.parts)
    return files


def _run(args: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(args)}\n".encode())
        out.flush()
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT,
                              timeout=PIP_TIMEOUT_SECONDS)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        pytest.fail(f"{args[:4]} failed (log {log}):\n" + "\n".join(tail), pytrace=False)


def _require_tarballs() -> list[Path]:
    tarballs = [PEERS_DIR / HMA_TARBALL, PEERS_DIR / PYTX_TARBALL]
    missing = [str(t) for t in tarballs if not t.is_file()]
    if missing:
        pytest.fail(f"peer snapshots not found: {', '.join(missing)} (the peer tests install "
                    "HMA and python-threatexchange from ../shared/peers; set "
                    "HASHGUARD_PEERS_DIR to point elsewhere)", pytrace=False)
    return tarballs


def _full_build(home: Path, tarballs: list[Path], log: Path) -> None:
    for stale in ("src", "venv", "complete"):
        path = home / stale
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    src = home / "src"
    src.mkdir(parents=True)
    for tarball in tarballs:
        with tarfile.open(tarball) as archive:
            archive.extractall(src, filter="data")
    _run([sys.executable, "-m", "venv", str(home / "venv")], log)
    pip = [str(home / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    # pytx from its snapshot first, so HMA's `threatexchange>=1.2.16` is met by it and not by a
    # newer PyPI release; HMA editable, as its README says (its pyproject lists no packages).
    # setuptools>=77 lets hashguard's own build run without isolation in the quick reinstall.
    _run(pip + [str(src / "python-threatexchange"), "setuptools>=77", "wheel"], log)
    _run(pip + ["-e", f"{src / 'hasher-matcher-actioner'}[prod]"], log)
    _install_local(home, log, with_dependencies=True)


def _install_local(home: Path, log: Path, with_dependencies: bool) -> None:
    """hashguard's client distribution and the extension, from a copy of the work tree."""
    pip = [str(home / "venv" / "bin" / "python"), "-m", "pip", "install", "-q",
           "--no-build-isolation"]
    if not with_dependencies:  # same version number, new code: force it in
        pip += ["--no-deps", "--force-reinstall"]
    build = home / "build"
    shutil.rmtree(build, ignore_errors=True)
    # Copies, so that setuptools' build/ and egg-info never land in the work tree.
    shutil.copytree(PROJECT_ROOT, build / "hashguard", ignore=shutil.ignore_patterns(
        ".git", ".venv", ".peers-cache", "node_modules", "test-artifacts", "__pycache__",
        "*.egg-info", "build", "tests", "web", "bench", "docs"))
    _run(pip + [str(build / "hashguard"), str(build / "hashguard" / "clients" / "pytx")], log)
    shutil.rmtree(build, ignore_errors=True)


def peer_env() -> PeerEnv:
    """The environment, built or refreshed as needed; concurrent test runs wait on a lock."""
    tarballs = _require_tarballs()
    heavy_key = (f"py{sys.version_info[0]}{sys.version_info[1]}-{_digest(tarballs)[:8]}-"
                 f"{_dependencies_key()[:8]}")
    home = CACHE_DIR / heavy_key
    home.mkdir(parents=True, exist_ok=True)
    log = home / "build.log"
    started = time.monotonic()
    with open(home / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rebuilt = ""
        local_key = _digest(_local_files())
        stamp = home / "local-stamp"
        if not (home / "complete").is_file():
            stamp.unlink(missing_ok=True)
            _full_build(home, tarballs, log)
            (home / "complete").write_text(heavy_key)
            stamp.write_text(local_key)
            rebuilt = "full"
        elif not stamp.is_file() or stamp.read_text() != local_key:
            _install_local(home, log, with_dependencies=False)
            stamp.write_text(local_key)
            rebuilt = rebuilt or "local"
    seconds = time.monotonic() - started if rebuilt else 0.0
    return PeerEnv(home / "venv", home / "src" / "hasher-matcher-actioner" / "src", seconds,
                   rebuilt)

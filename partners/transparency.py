"""The transparency log's service side: the signing key, the background tree builder, and the
public endpoints (signed tree head, inclusion and consistency proofs, the well-known public key)
plus the partner-only entries endpoint that lets a partner recompute the leaves.

`install(app)` wires all of it into an app: the routes, and the builder started and stopped with
the app's lifespan; its settings are the app's (api/settings.py: HASHGUARD_TRANSPARENCY_KEY,
HASHGUARD_TREE_HEAD_INTERVAL, HASHGUARD_TREE_HEAD_MAX_AGE, HASHGUARD_TREE_BUILDER). Several
processes may run builders: each step takes a PostgreSQL advisory lock (SQLite: the single writer
lock), so one at a time appends, in seq order.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from partners.auth import AuthenticatedPartner, authenticate
from partners.errors import ServiceError, error_responses
from store import changelog, merkle
from store.secret_file import read_or_create
from store.secrets import decode_secret
from txlog import head as tlog
from txlog.compact import Frontier
from txlog.entry import entry_commitment

log = logging.getLogger("hashguard.transparency")

KEY_FILE = "transparency-ed25519.pem"
DEFAULT_INTERVAL_S = 1.0
DEFAULT_MAX_AGE_S = 3600.0
BUILDER_LOCK = 0x48475452  # "HGTR"; the change log's append lock is "HGCL"
MAX_ENTRIES = 1000
MAX_ENTRY_VALUE_BYTES = 4 * 1024 * 1024


# --- The signing key ---------------------------------------------------------------------------

def signing_key(data_dir: Path, seed: str | None = None) -> Ed25519PrivateKey:
    """From `seed` (Settings.transparency_key), else the key file in the data dir, made on first
    use.

    Losing it is not fatal (a new key signs new heads; partners must pin the new public key),
    but every process and host serving one database must sign with the same key.
    """
    if seed and seed.strip():
        return Ed25519PrivateKey.from_private_bytes(decode_secret(seed.strip()))
    path = Path(data_dir) / KEY_FILE
    # Two workers starting together keep one key, and neither reads a half-written file.
    pem, created = read_or_create(path, lambda: Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    if created:
        log.warning("generated a new transparency signing key in %s; back it up: partners pin "
                    "its public key", path)
    return serialization.load_pem_private_key(pem, password=None)


def public_key_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# --- The builder -------------------------------------------------------------------------------

class TreeBuilder:
    """Appends committed change-log entries to the tree and signs heads.

    `step()` is one transaction; `catch_up()` steps until nothing is pending. The background
    thread steps every `interval` seconds, so while entries arrive a new head is signed at least
    that often.
    """

    def __init__(self, database, key: Ed25519PrivateKey, interval: float = DEFAULT_INTERVAL_S,
                 max_age: float = DEFAULT_MAX_AGE_S):
        self.database, self.key = database, key
        self.interval, self.max_age = interval, max_age
        self.key_id = bytes.fromhex(tlog.key_id(public_key_raw(key)))
        self._lock = threading.Lock()
        self._frontier: Frontier | None = None
        self._last_seq = -1  # highest seq known to be in the tree (a hint, re-read when stale)
        self._head_at = 0.0  # when this process last saw a head signed (monotonic clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def catch_up(self) -> int:
        """Append everything committed so far and sign a head for it; returns the tree size."""
        while self.step(force=True):
            pass
        return self._frontier.size if self._frontier else 0

    def step(self, force: bool = False) -> bool:
        """One append transaction. Returns True when more entries are pending."""
        with self._lock:
            if not force and not self._work_pending():
                return False
            with self.database.transaction() as session:
                if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                        text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": BUILDER_LOCK}):
                    return False  # another process is appending right now
                size = merkle.tree_size(session)
                frontier = self._frontier
                if frontier is None or frontier.size != size:
                    frontier = merkle.stored_frontier(session, size)
                frontier = Frontier(frontier.size, frontier.hashes)  # cache kept on rollback
                appended, last_seq = merkle.extend_from_log(
                    session, frontier, merkle.last_logged_seq(session))
                self._sign_if_due(session, frontier)
            self._frontier = frontier
            self._last_seq = last_seq
            return appended >= merkle.BATCH_ENTRIES

    def _work_pending(self) -> bool:
        """Cheap check before taking a write lock: a new entry, or a head too old."""
        if time.monotonic() - self._head_at >= self.max_age:
            return True
        with self.database.read() as session:
            return changelog.last_seq(session) > self._last_seq

    def _sign_if_due(self, session, frontier: Frontier) -> None:
        latest = merkle.latest_head(session)
        now_ms = int(time.time() * 1000)
        if latest is not None and latest.tree_size == frontier.size \
                and now_ms - latest.timestamp_ms < self.max_age * 1000:
            self._head_at = time.monotonic() - (now_ms - latest.timestamp_ms) / 1000
            return
        # Never older than the last head, even if this host's clock is behind another's.
        timestamp = max(now_ms, latest.timestamp_ms if latest else 0)
        root = frontier.root()
        signature = self.key.sign(tlog.tree_head_bytes(frontier.size, timestamp, root))
        merkle.add_head(session, frontier.size, timestamp, root, signature, self.key_id)
        self._head_at = time.monotonic()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="transparency-builder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self) -> None:
        first = True
        while first or not self._stop.wait(self.interval):
            try:
                while self.step(force=first) and not self._stop.is_set():
                    pass
                first = False
            except Exception:  # the next step retries; a failed step leaves no partial tree
                log.exception("transparency tree builder step failed")


# --- Wire models -------------------------------------------------------------------------------

class PublicKey(BaseModel):
    algorithm: str = Field("Ed25519")
    public_key: str = Field(description="raw 32-byte Ed25519 public key, base64")
    key_id: str = Field(description="SHA-256 of the raw public key, hex")
    pem: str = Field(description="the same key as SubjectPublicKeyInfo PEM")


class TreeHead(BaseModel):
    tree_size: int
    timestamp: int = Field(description="unix milliseconds")
    root_hash: str = Field(description="RFC 9162 Merkle tree hash (SHA-256), base64")
    signature: str = Field(description="Ed25519 over `hashguard-tree-head-v1\\0` || uint64 "
                                       "tree_size || uint64 timestamp || root_hash, base64")
    key_id: str


class InclusionProof(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str] = Field(description="RFC 9162 inclusion path, leaf to root, base64")


class ConsistencyProof(BaseModel):
    first: int
    second: int
    proof: list[str] = Field(description="RFC 9162 consistency proof, base64")


class LogEntry(BaseModel):
    index: int
    seq: int = Field(description="the entry's change-log position (the pull's `seq`)")
    leaf_hash: str
    pathway: str | None = None
    op: str | None = Field(None, description="only for the pathways the partner receives")
    signal_type: str | None = None
    value: str | None = None
    nonce: str | None = Field(None, description="the commitment's nonce, base64")
    commitment: str | None = Field(None, description="for the other pathways, instead of op, "
                                                     "signal_type, value and nonce")


class LogEntries(BaseModel):
    start: int
    end: int = Field(description="one past the last entry returned; ask again from here")
    pathways: list[str] = Field(description="the pathways whose entries come in full")
    entries: list[LogEntry]


# --- Routes ------------------------------------------------------------------------------------

router = APIRouter(tags=["transparency"])


def _builder(request: Request) -> TreeBuilder:
    return request.app.state.transparency


@router.get(tlog.KEY_PATH, response_model=PublicKey)
def public_key(request: Request):
    """The Ed25519 key that signs tree heads (pin it: `hashguard transparency public-key`
    prints the same on the server)."""
    key = _builder(request).key
    raw = public_key_raw(key)
    return PublicKey(public_key=tlog.b64encode(raw), key_id=tlog.key_id(raw),
                     pem=public_key_pem(key))


@router.get(tlog.HEAD_PATH, response_model=TreeHead, responses=error_responses(503))
def head(request: Request):
    """The latest signed tree head: the log's size and Merkle root, signed."""
    with request.app.state.database.read() as session:
        latest = merkle.latest_head(session)
    if latest is None:
        raise ServiceError(503, "no_tree_head", "the transparency log has no signed head yet")
    return TreeHead(tree_size=latest.tree_size, timestamp=latest.timestamp_ms,
                    root_hash=tlog.b64encode(latest.root_hash),
                    signature=tlog.b64encode(latest.signature), key_id=latest.key_id.hex())


@router.get(tlog.INCLUSION_PATH, response_model=InclusionProof,
            responses=error_responses(400, 422))
def inclusion(request: Request, index: int = Query(..., ge=0),
              tree_size: int = Query(..., ge=1)):
    """Proof that leaf `index` is in the tree of `tree_size` leaves (RFC 9162 2.1.3)."""
    if index >= tree_size:
        raise ServiceError(400, "index_out_of_range", "index must be below tree_size")
    with request.app.state.database.read() as session:
        _check_size(session, tree_size)
        leaf, path = merkle.prove_inclusion(session, index, tree_size)
    return InclusionProof(index=index, tree_size=tree_size, leaf_hash=tlog.b64encode(leaf),
                          audit_path=[tlog.b64encode(h) for h in path])


@router.get(tlog.CONSISTENCY_PATH, response_model=ConsistencyProof,
            responses=error_responses(400, 422))
def consistency(request: Request, first: int = Query(..., ge=0), second: int = Query(..., ge=0)):
    """Proof that the tree of `second` leaves extends the tree of `first` (RFC 9162 2.1.4)."""
    if first > second:
        raise ServiceError(400, "invalid_range", "first must not exceed second")
    with request.app.state.database.read() as session:
        _check_size(session, second)
        proof = merkle.prove_consistency(session, first, second)
    return ConsistencyProof(first=first, second=second, proof=[tlog.b64encode(h) for h in proof])


@router.get(tlog.ENTRIES_PATH, response_model=LogEntries, response_model_exclude_none=True,
            responses=error_responses(400, 401, 422, 429))
def entries(request: Request, start: int = Query(..., ge=0), end: int = Query(..., ge=1),
            partner: AuthenticatedPartner = Depends(authenticate)):
    """Leaves [start, end) (at most 1,000 per answer) with what each logs: in full for the
    partner's pathways, as the commitment otherwise. Recomputing the leaves and the root
    checks that no logged entry was altered since."""
    if start >= end:
        raise ServiceError(400, "invalid_range", "start must be below end")
    end = min(end, start + MAX_ENTRIES)
    out, size = [], 0
    with request.app.state.database.read() as session:
        _check_size(session, end)
        for row in merkle.entries(session, start, end):
            out.append(_entry(row, partner.pathways))
            size += len(row.value or "")
            if size > MAX_ENTRY_VALUE_BYTES:
                break
    return LogEntries(start=start, end=start + len(out), pathways=partner.pathways, entries=out)


def _entry(row, pathways: list[str]) -> LogEntry:
    entry = LogEntry(index=row.leaf_index, seq=row.seq, leaf_hash=tlog.b64encode(row.leaf_hash))
    if row.value is None:
        return entry  # the change-log row is gone: the verifier reports it
    entry.pathway = row.pathway
    if row.pathway in pathways:
        entry.op, entry.signal_type, entry.value = row.op, row.signal_type, row.value
        entry.nonce = tlog.b64encode(row.nonce)
    else:
        entry.commitment = tlog.b64encode(
            entry_commitment(row.op, row.signal_type, row.value, row.nonce))
    return entry


def _check_size(session, size: int) -> None:
    if size > merkle.tree_size(session):
        raise ServiceError(400, "tree_size_too_large", "the log does not have that many entries yet")


# --- Wiring ------------------------------------------------------------------------------------

def install(app) -> None:
    """Add the routes to `app` and create its tree builder (app.state.transparency). The app's
    lifespan runs the builder (`start`/`stop`) unless settings.tree_builder is off
    (HASHGUARD_TREE_BUILDER=0). Uses app.state.database and app.state.settings."""
    settings = app.state.settings
    builder = TreeBuilder(app.state.database,
                          signing_key(settings.data_dir, settings.transparency_key),
                          settings.tree_head_interval, settings.tree_head_max_age)
    builder.enabled = settings.tree_builder
    app.state.transparency = builder
    app.include_router(router)


def tree_size_for(session, seq: int) -> int:
    """The tree size a pull page ending at cursor `seq` reflects (for partners/feed.py)."""
    return merkle.tree_size_for(session, seq)

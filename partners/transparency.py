"""The transparency log's service side: the signing key, the background tree builder, and the
endpoints: the well-known public key (public), and for partners the signed tree head, inclusion
and consistency proofs, and the entries that let a partner recompute the leaves.

One tree per pathway, each served only to partners entitled to its pathway (`pathway` query
parameter; without it, a partner entitled to one pathway gets that one's tree). Heads were public
when there was one tree; they are not any more: a head tells a tree's size and time, and a public
head of the under-18 tree would let anyone, an adult-only partner included, count and time the
under-18 list (issue 21; README "Transparency log" says which principle wins and why).

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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from partners.auth import AuthenticatedPartner, authenticate
from partners.errors import ServiceError, error_responses
from store import changelog, merkle, secret_check
from store.background import BackgroundLoop
from store.models import PATHWAYS
from store.secret_file import read_or_create
from store.secret_models import PURPOSE_TRANSPARENCY
from store.secrets import decode_secret
from txlog import head as tlog
from txlog.compact import Frontier

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

class TreeBuilder(BackgroundLoop):
    """Appends committed change-log entries to their pathway's tree and signs heads.

    `step()` is one transaction over every pathway; `catch_up()` steps until nothing is pending.
    The background thread steps every `interval` seconds, so while entries arrive a new head of
    each tree that grew is signed at least that often.
    """

    thread_name = "transparency-builder"

    def __init__(self, database, key: Ed25519PrivateKey, interval: float = DEFAULT_INTERVAL_S,
                 max_age: float = DEFAULT_MAX_AGE_S, current_key=None):
        super().__init__()
        self.database, self.key = database, key
        # current_key(session) -> the key the database says signs now (None: keep this one).
        # After `hashguard transparency rotate-key` every running builder moves to the new key
        # at its next step, instead of re-signing heads with the retired one.
        self.current_key = current_key
        self.interval, self.max_age = interval, max_age
        self.key_id = bytes.fromhex(tlog.key_id(public_key_raw(key)))
        self._lock = threading.Lock()
        self._frontiers: dict[str, Frontier] = {}
        self._last_seq = -1  # highest global seq known to be in a tree (a hint, re-read when stale)
        self._head_at = 0.0  # when this process last saw every head fresh (monotonic clock)

    def catch_up(self) -> dict[str, int]:
        """Append everything committed so far and sign heads for it; returns each tree's size."""
        while self.step(force=True):
            pass
        return {p: (self._frontiers[p].size if p in self._frontiers else 0) for p in PATHWAYS}

    def step(self, force: bool = False) -> bool:
        """One append transaction. Returns True when more entries are pending."""
        with self._lock:
            if not force and not self._work_pending():
                return False
            frontiers, more = {}, False
            with self.database.transaction() as session:
                if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                        text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": BUILDER_LOCK}):
                    return False  # another process is appending right now
                self._follow_key(session)
                # Read before appending: the hint may then only lag what was appended.
                log_head = changelog.last_seq(session)
                oldest_head_at = time.monotonic()
                for pathway in PATHWAYS:
                    frontier = self._frontier(session, pathway)
                    appended, _ = merkle.extend_from_log(
                        session, pathway, frontier, merkle.last_logged_position(session, pathway))
                    more |= appended >= merkle.BATCH_ENTRIES
                    oldest_head_at = min(oldest_head_at,
                                         self._sign_if_due(session, pathway, frontier))
                    frontiers[pathway] = frontier
            self._frontiers = frontiers
            self._last_seq = -1 if more else log_head
            self._head_at = oldest_head_at
            return more

    def _frontier(self, session, pathway: str) -> Frontier:
        size = merkle.tree_size(session, pathway)
        frontier = self._frontiers.get(pathway)
        if frontier is None or frontier.size != size:
            frontier = merkle.stored_frontier(session, pathway, size)
        return Frontier(frontier.size, frontier.hashes)  # the cache is kept on rollback

    def _work_pending(self) -> bool:
        """Cheap check before taking a write lock: a new entry, a head too old, a new key."""
        if time.monotonic() - self._head_at >= self.max_age:
            return True
        with self.database.read() as session:
            if self.current_key is not None and self._recorded_key_id(session) not in (
                    None, self.key_id.hex()):
                return True
            return changelog.last_seq(session) > self._last_seq

    @staticmethod
    def _recorded_key_id(session) -> str | None:
        row = secret_check.current_key(session, PURPOSE_TRANSPARENCY)
        return row.key_id if row is not None else None

    def _follow_key(self, session) -> None:
        if self.current_key is None or self._recorded_key_id(session) in (None,
                                                                          self.key_id.hex()):
            return
        key = self.current_key(session)
        self.key, self.key_id = key, bytes.fromhex(tlog.key_id(public_key_raw(key)))
        log.info("transparency signing key changed; signing with the new key from now on")

    def _sign_if_due(self, session, pathway: str, frontier: Frontier) -> float:
        """Sign a head of the pathway's tree unless its latest one is current and young; returns
        when (monotonic clock) the tree's latest head was signed."""
        latest = merkle.latest_head(session, pathway)
        now_ms = int(time.time() * 1000)
        if latest is not None and latest.tree_size == frontier.size \
                and bytes(latest.key_id) == self.key_id \
                and now_ms - latest.timestamp_ms < self.max_age * 1000:
            return time.monotonic() - (now_ms - latest.timestamp_ms) / 1000
        # Never older than the last head, even if this host's clock is behind another's.
        timestamp = max(now_ms, latest.timestamp_ms if latest else 0)
        root = frontier.root()
        signature = self.key.sign(tlog.tree_head_bytes(frontier.size, timestamp, root, pathway))
        merkle.add_head(session, pathway, frontier.size, timestamp, root, signature, self.key_id)
        return time.monotonic()

    def run(self) -> None:
        first = True
        while first or not self._stop.wait(self.interval):
            try:
                while self.step(force=first) and not self._stop.is_set():
                    pass
                first = False
            except Exception:  # the next step retries; a failed step leaves no partial tree
                log.exception("transparency tree builder step failed")


# --- Wire models -------------------------------------------------------------------------------

class KeyChange(BaseModel):
    old_public_key: str = Field(description="the retired key, raw Ed25519, base64")
    new_public_key: str = Field(description="its successor, raw Ed25519, base64")
    timestamp: int = Field(description="unix seconds")
    signature: str = Field(description="Ed25519 by the OLD key over "
                                       "`hashguard-transparency-key-change-v1\\0` || old key || "
                                       "new key || uint64 timestamp, base64")


class PublicKey(BaseModel):
    algorithm: str = Field("Ed25519")
    public_key: str = Field(description="raw 32-byte Ed25519 public key, base64")
    key_id: str = Field(description="SHA-256 of the raw public key, hex")
    pem: str = Field(description="the same key as SubjectPublicKeyInfo PEM")
    key_changes: list[KeyChange] = Field(
        default_factory=list,
        description="every change of key, oldest first, each signed by the key it retired: a "
                    "verifier that trusts an earlier key follows them to this one")


class TreeHead(BaseModel):
    tree_size: int
    timestamp: int = Field(description="unix milliseconds")
    root_hash: str = Field(description="RFC 9162 Merkle tree hash (SHA-256), base64")
    signature: str = Field(description="Ed25519 over `hashguard-tree-head-v2\\0` || uint32 "
                                       "length || pathway (UTF-8) || uint64 tree_size || uint64 "
                                       "timestamp || root_hash, base64")
    key_id: str
    pathway: str = Field(description="the pathway whose tree this is (signed)")


class InclusionProof(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str] = Field(description="RFC 9162 inclusion path, leaf to root, base64")
    pathway: str


class ConsistencyProof(BaseModel):
    first: int
    second: int
    proof: list[str] = Field(description="RFC 9162 consistency proof, base64")
    pathway: str


class LogEntry(BaseModel):
    index: int = Field(description="the leaf's index in its pathway's tree")
    seq: int = Field(description="the entry's position as the partner's pull numbers it (the "
                                 "pull's `seq`: pathway_seq for a partner entitled to one "
                                 "pathway, the global position for one entitled to all)")
    pathway_seq: int | None = Field(None, description="the entry's position within its pathway "
                                                       "(what the leaf commits to)")
    leaf_hash: str
    pathway: str | None = None
    op: str | None = None
    signal_type: str | None = None
    value: str | None = None
    nonce: str | None = Field(None, description="the commitment's nonce, base64")
    commitment: str | None = Field(None, description="no longer served: a partner is served "
                                                     "only the trees of its own pathways, in full")


class LogEntries(BaseModel):
    start: int
    end: int = Field(description="one past the last entry returned; ask again from here")
    pathway: str = Field(description="the tree these are the leaves of")
    pathways: list[str] = Field(description="the pathways the partner is entitled to")
    entries: list[LogEntry]


class Trees(BaseModel):
    pathways: list[str] = Field(description="the pathways whose trees the partner may read: "
                                            "pass one as `pathway` to the other endpoints")


# --- Routes ------------------------------------------------------------------------------------

router = APIRouter(tags=["transparency"])

PATHWAY_QUERY = Query(None, max_length=32, description=(
    "the pathway whose tree to read; may be left out by a partner entitled to exactly one"))


def _builder(request: Request) -> TreeBuilder:
    return request.app.state.transparency


def partner_tree(pathway: str | None = PATHWAY_QUERY,
                 partner: AuthenticatedPartner = Depends(authenticate)) -> str:
    """The tree a request reads: the named pathway if the partner is entitled to it; without one,
    the partner's only pathway. A tree of a pathway the partner is not entitled to is refused,
    like everything else of that pathway (DESIGN.md: who may learn what)."""
    if pathway is None:
        if len(partner.pathways) != 1:
            raise ServiceError(400, "pathway_required",
                               "name the tree to read: pathway=" + " or pathway=".join(
                                   partner.pathways))
        return partner.pathways[0]
    if pathway not in PATHWAYS:
        raise ServiceError(400, "unknown_pathway",
                           "pathway must be one of " + ", ".join(PATHWAYS))
    if pathway not in partner.pathways:
        raise ServiceError(403, "pathway_not_entitled",
                           "this partner key is not entitled to that pathway's tree")
    return pathway


@router.get(tlog.KEY_PATH, response_model=PublicKey)
def public_key(request: Request):
    """The Ed25519 key that signs tree heads (pin it: `hashguard transparency public-key`
    prints the same on the server). Public: it tells nothing about any tree."""
    # From the database, not this process's builder: after `hashguard transparency rotate-key`
    # every process publishes the new key and the signed change at once.
    history = []
    if _builder(request).current_key is not None:
        with request.app.state.database.read() as session:
            history = secret_check.key_history(session, PURPOSE_TRANSPARENCY)
    if not history:  # an app whose keys the database does not record (api/startup.py)
        key = _builder(request).key
        return PublicKey(public_key=tlog.b64encode(public_key_raw(key)),
                         key_id=tlog.key_id(public_key_raw(key)), pem=public_key_pem(key))
    current = [row for row in history if row.retired_at is None][-1]
    raw = bytes(current.public_key)
    changes = [KeyChange(old_public_key=tlog.b64encode(bytes(old.public_key)),
                         new_public_key=tlog.b64encode(bytes(new.public_key)),
                         timestamp=new.created_at, signature=tlog.b64encode(new.endorsement))
               for old, new in zip(history, history[1:]) if new.endorsement is not None]
    pem = Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return PublicKey(public_key=tlog.b64encode(raw), key_id=tlog.key_id(raw), pem=pem,
                     key_changes=changes)


@router.get(tlog.TREES_PATH, response_model=Trees, responses=error_responses(401, 429))
def trees(partner: AuthenticatedPartner = Depends(authenticate)):
    """The trees (one per pathway) the partner may read and verify."""
    return Trees(pathways=[p for p in PATHWAYS if p in partner.pathways])


@router.get(tlog.HEAD_PATH, response_model=TreeHead,
            responses=error_responses(400, 401, 403, 429, 503))
def head(request: Request, pathway: str = Depends(partner_tree)):
    """The latest signed head of the pathway's tree: its size and Merkle root, signed."""
    with request.app.state.database.read() as session:
        latest = merkle.latest_head(session, pathway)
    if latest is None:
        raise ServiceError(503, "no_tree_head", "the transparency log has no signed head yet")
    return TreeHead(tree_size=latest.tree_size, timestamp=latest.timestamp_ms,
                    root_hash=tlog.b64encode(latest.root_hash),
                    signature=tlog.b64encode(latest.signature), key_id=latest.key_id.hex(),
                    pathway=pathway)


@router.get(tlog.INCLUSION_PATH, response_model=InclusionProof,
            responses=error_responses(400, 401, 403, 422, 429))
def inclusion(request: Request, index: int = Query(..., ge=0),
              tree_size: int = Query(..., ge=1), pathway: str = Depends(partner_tree)):
    """Proof that leaf `index` is in the pathway's tree of `tree_size` leaves (RFC 9162 2.1.3)."""
    if index >= tree_size:
        raise ServiceError(400, "index_out_of_range", "index must be below tree_size")
    with request.app.state.database.read() as session:
        _check_size(session, pathway, tree_size)
        leaf, path = merkle.prove_inclusion(session, pathway, index, tree_size)
    return InclusionProof(index=index, tree_size=tree_size, leaf_hash=tlog.b64encode(leaf),
                          audit_path=[tlog.b64encode(h) for h in path], pathway=pathway)


@router.get(tlog.CONSISTENCY_PATH, response_model=ConsistencyProof,
            responses=error_responses(400, 401, 403, 422, 429))
def consistency(request: Request, first: int = Query(..., ge=0), second: int = Query(..., ge=0),
                pathway: str = Depends(partner_tree)):
    """Proof that the pathway's tree of `second` leaves extends its tree of `first` (RFC 9162
    2.1.4)."""
    if first > second:
        raise ServiceError(400, "invalid_range", "first must not exceed second")
    with request.app.state.database.read() as session:
        _check_size(session, pathway, second)
        proof = merkle.prove_consistency(session, pathway, first, second)
    return ConsistencyProof(first=first, second=second, proof=[tlog.b64encode(h) for h in proof],
                            pathway=pathway)


@router.get(tlog.ENTRIES_PATH, response_model=LogEntries, response_model_exclude_none=True,
            responses=error_responses(400, 401, 403, 422, 429))
def entries(request: Request, start: int = Query(..., ge=0), end: int = Query(..., ge=1),
            partner: AuthenticatedPartner = Depends(authenticate),
            pathway: str = Depends(partner_tree)):
    """Leaves [start, end) of the pathway's tree (at most 1,000 per answer) with what each logs,
    in full. Recomputing the leaves and the root checks that no logged entry was altered
    since."""
    if start >= end:
        raise ServiceError(400, "invalid_range", "start must be below end")
    end = min(end, start + MAX_ENTRIES)
    global_positions = changelog.reads_global_positions(partner.pathways)
    out, size = [], 0
    with request.app.state.database.read() as session:
        _check_size(session, pathway, end)
        for row in merkle.entries(session, pathway, start, end):
            out.append(_entry(row, global_positions))
            size += len(row.value or "")
            if size > MAX_ENTRY_VALUE_BYTES:
                break
    return LogEntries(start=start, end=start + len(out), pathway=pathway,
                      pathways=partner.pathways, entries=out)


def _entry(row, global_positions: bool) -> LogEntry:
    # `seq`: the leaf's global position only for a partner that reads global positions; for one
    # entitled to a single pathway, its pathway position (as its pull numbers the entry).
    if row.value is None:  # the change-log row is gone: the verifier reports it
        return LogEntry(index=row.leaf_index, seq=row.seq if global_positions else row.position,
                        leaf_hash=tlog.b64encode(row.leaf_hash))
    return LogEntry(index=row.leaf_index, seq=row.log_seq if global_positions else row.pathway_seq,
                    pathway_seq=row.pathway_seq, leaf_hash=tlog.b64encode(row.leaf_hash),
                    pathway=row.pathway, op=row.op, signal_type=row.signal_type, value=row.value,
                    nonce=tlog.b64encode(row.nonce))


def _check_size(session, pathway: str, size: int) -> None:
    if size > merkle.tree_size(session, pathway):
        raise ServiceError(400, "tree_size_too_large", "the log does not have that many entries yet")


# --- Wiring ------------------------------------------------------------------------------------

def install(app) -> None:
    """Add the routes to `app` and create its tree builder (app.state.transparency). The app's
    lifespan runs the builder (`start`/`stop`) unless settings.tree_builder is off
    (HASHGUARD_TREE_BUILDER=0). Uses app.state.database and app.state.settings."""
    settings = app.state.settings
    # The key the database records (api/startup.py), shared by every host; an app made without
    # that start-up step (none in the service) falls back to the data dir's file.
    keys = getattr(app.state, "signing_keys", None) or {}
    key = keys.get("transparency") or signing_key(settings.data_dir, settings.transparency_key)

    def current_key(session):
        # Opened with this process's secret; a process that cannot open it (its key came from
        # the environment) stops with StartRefused's sentence in the builder's log.
        row = secret_check.current_key(session, PURPOSE_TRANSPARENCY)
        try:
            return secret_check.open_key(row, app.state.server_secret, app.state.secret_version)
        except secret_check.StartRefused as refused:  # a SystemExit: not in a worker thread
            raise RuntimeError(refused.reason) from None

    builder = TreeBuilder(app.state.database, key,
                          settings.tree_head_interval, settings.tree_head_max_age,
                          current_key=current_key if getattr(app.state, "secret_version", 0)
                          else None)
    builder.enabled = settings.tree_builder
    app.state.transparency = builder
    app.include_router(router)


def tree_sizes_for(session, pathways: list[str], log_seq: int) -> dict[str, int]:
    """The size of each of the partner's trees that a pull page ending at global position
    `log_seq` reflects (for partners/feed.py): only the partner's own pathways' trees."""
    return {p: merkle.tree_size_for(session, p, log_seq) for p in PATHWAYS if p in pathways}

"""Service settings from the environment (HASHGUARD_*), with command-line overrides."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from store.secret_file import read_or_create
from store.secrets import SECRET_BYTES, decode_secret, encode_secret

log = logging.getLogger("hashguard.settings")


def default_data_dir() -> Path:
    """The one place the default is written (HASHGUARD_DATA_DIR overrides it)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "hashguard"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HASHGUARD_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    # Default: an SQLite file in data_dir, so one command runs the service with no setup.
    database_url: str | None = None
    # base64url of >= 32 random bytes. Several API processes must share it (operations docs).
    secret: str | None = None
    max_hashes_per_request: int = 500
    max_hashes_per_case: int = 5000
    max_body_bytes: int = 4 * 1024 * 1024  # 500 TMK values would not fit; 500 PDQ fit in 50 kB
    # Wrong case tokens per case reference and minute, counted across every process (in the
    # database, keyed by a keyed hash: store/limits.py). Past it a wrong token gets 429; a right
    # one is always served (api/token_failures.py). 0 turns it off.
    token_lookups_per_minute_per_case: int = 10
    # Token lookups, right or wrong, per process and second (load shedding, in memory).
    token_lookups_per_second_overall: int = 200
    partner_requests_per_second: int = 50
    # Per client address (kept only as keyed hashes); 0 turns a limit off. Case writes: in each
    # process's memory. Token lookups: WRONG case tokens per address and minute, across every
    # process, like the per-case budget above (a right token is never refused).
    case_writes_per_hour_per_client: int = 100
    token_lookups_per_minute_per_client: int = 60
    trust_forwarded_for: bool = False
    metrics_token: str | None = None  # /metrics only with this bearer token (api/operations.py)
    log_level: str = "INFO"
    # Long-poll: how often a waiting pull re-reads even without a wake-up (writers that cannot
    # notify this process: SQLite shared with CLI processes).
    long_poll_recheck_seconds: float = 1.0
    # Distinct partners reporting `not_violating` that take a hash out of the shared set.
    dispute_quarantine_threshold: int = Field(2, ge=1)
    # Each partner's disputes act only within a budget (partners/disputes.py): so many a day,
    # and at most this share of its pathways' shared set undecided at once (never less than a
    # day's worth). Past it they wait for the operator (`hashguard review list`).
    dispute_budget_per_day: int = Field(20, ge=0)
    dispute_budget_share: float = Field(0.01, ge=0, le=1)
    # Freeze the start-up heap and raise the collector's thresholds once started (api/app.py):
    # for a process that serves; tests starting hundreds of apps in one process turn it off.
    tune_garbage_collector: bool = True
    # The transparency log (partners/transparency.py). transparency_key: base64url of a 32-byte
    # Ed25519 seed, for several hosts serving one database; default: a key file in data_dir.
    transparency_key: str | None = None
    # The webhook signing key: base64url of a 32-byte Ed25519 seed. Default: made once and kept in
    # the database sealed under the server secret, so every host signs webhooks with one key.
    webhook_key: str | None = None
    # `hashguard serve` (api/serving.py): a connection's request headers must be complete this
    # long after they began, its body this long after its headers, or it is closed (slow-loris).
    header_timeout_seconds: float = Field(10.0, gt=0)
    body_timeout_seconds: float = Field(60.0, gt=0)
    tree_head_interval: float = 1.0  # seconds between builder steps / new heads
    tree_head_max_age: float = 3600.0  # re-sign an unchanged head after this many seconds
    tree_builder: bool = True  # False ("0"): this process serves the log but does not build it
    # Failed partner-key attempts per client address and minute, across every process (keyed
    # hash in the database, store/limits.py); past it, 429 `too_many_failed_keys` before any
    # key lookup.
    # Successful authentication is never charged. 0 turns it off (partners/key_failures.py).
    partner_key_failures_per_minute_per_client: int = Field(20, ge=0)
    # Bounded cost per anonymous byte (issue 21, finding 5). Hash values are charged by their
    # length, so at these defaults only large types bind: a TMK value is 351 KB (each is stored
    # in `hashes` and copied into every change-log entry, add and remove), while 500 PDQ hashes
    # are 32 KB. 0 turns a limit off. Per request: 3 MiB, what hashguard's client sends at most
    # (hashing/client.py), 8 TMK values. Per case: 12 MiB, ~35 videos. Per client address and
    # hour (kept as keyed hashes in memory, api/client_limits.py): 16 MiB, ~47 TMK values, so
    # one address grows the database by at most ~50 MB an hour (add + remove entries + the
    # values), where submit/withdraw cycles used to reach ~800 MB.
    max_value_bytes_per_request: int = 3 * 1024 * 1024
    max_value_bytes_per_case: int = 12 * 1024 * 1024
    value_bytes_per_hour_per_client: int = 16 * 1024 * 1024

    # --- Idempotency-Key replay window (api/idempotency.py says why 10 minutes) ---------------
    # A retried submit with the same key gets the same case and token only this long after the
    # first; then the record (key digest, sealed token) is deleted (api/idempotency_sweeper.py)
    # and the key is forgotten. Longer keeps a key a credential to the case for longer.
    idempotency_window_seconds: float = Field(600.0, gt=0)

    @field_validator("tree_head_interval", "tree_head_max_age")
    @classmethod
    def _at_least_10_ms(cls, seconds: float) -> float:
        # A zero interval would make the builder thread spin on the database.
        return max(0.01, seconds)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'hashguard.db'}"

    def secret_location(self) -> str:
        """Where the server secret comes from, for messages (never the secret)."""
        return "HASHGUARD_SECRET" if self.secret else str(self.data_dir / "server-secret")

    def configured_secret(self) -> bytes | None:
        """The secret this process was given (HASHGUARD_SECRET, else its file), None if neither.
        Never makes one: only a fresh database may get a new secret (store/secret_check.py)."""
        if self.secret:
            return self.server_secret()
        try:
            content = (self.data_dir / "server-secret").read_bytes()
        except FileNotFoundError:
            return None
        return _checked(decode_secret(content.decode().strip()), self.data_dir / "server-secret")

    def key_seed(self, purpose: str) -> bytes | None:
        """A signing key's Ed25519 seed given in the environment (transparency, webhook)."""
        text = {"transparency": self.transparency_key, "webhook": self.webhook_key}[purpose]
        if not (text and text.strip()):
            return None
        seed = decode_secret(text.strip())
        if len(seed) != 32:
            raise ValueError(f"HASHGUARD_{purpose.upper()}_KEY must encode a 32-byte Ed25519 seed")
        return seed

    def server_secret(self) -> bytes:
        """The key of every verifier. From HASHGUARD_SECRET, else a file made on first run."""
        if self.secret:
            raw = decode_secret(self.secret)
            if len(raw) < SECRET_BYTES:
                raise ValueError("HASHGUARD_SECRET must encode at least 32 random bytes")
            return raw
        path = self.data_dir / "server-secret"
        # Safe when several workers start together (store/secret_file.py says how it failed).
        content, created = read_or_create(
            path, lambda: encode_secret(os.urandom(SECRET_BYTES)).encode())
        if created:
            log.warning("generated a new server secret in %s; back it up: without it no case "
                        "token or partner key can be verified", path)
        return _checked(decode_secret(content.decode().strip()), path)


def _checked(raw: bytes, path: Path) -> bytes:
    if len(raw) < SECRET_BYTES:
        raise ValueError(f"the server secret file {path} holds fewer than 32 bytes: "
                         "restore it from a backup")
    return raw

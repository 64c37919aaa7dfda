"""The `hashguard` exchange type: hashguard's native change log as a pytx SignalExchangeAPI.

No `from __future__ import annotations` here: pytx's CLI and HMA read these dataclasses' field
types at run time (to build arguments and forms), and would get strings instead of types.

Records are keyed per (pathway, signal type, value): the log, pulled with
`entries=per_pathway` (client.py), says "add" and "remove" per pathway, so a value shared under
both pathways is two records, and withdrawing one pathway's case removes exactly that record. HMA replaces a record by key and never merges, so this keeps
its bank exact without any state in the exchange.
"""
import hashlib
import logging
import typing as t
from dataclasses import dataclass, field

from threatexchange.exchanges import auth, signal_exchange_api
from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.signal_type.signal_base import SignalType

from hashguard_pytx.client import HashguardAPIError, HashguardClient, check_base_url

API_NAME = "hashguard"
# Keys are stored by HMA in a uniquely indexed text column, and PostgreSQL cannot index a
# 351 KB TMK value: longer values are keyed by their SHA-256 instead (the record keeps the value).
KEY_VALUE_MAX_CHARS = 256
DEFAULT_PAGE_SIZE = 1000
# The server's answer to a cursor past the head of a log restored from a backup: what was
# fetched past that head is gone from the service, so the bank must be rebuilt from scratch.
LOG_RESTORED = "log_restored"
MAX_LONG_POLL_SECONDS = 60  # the server's bound on `wait`

# What an opinion tells hashguard (POST /v1/partner/feedback actions). NEGATIVE_CLASS is a
# dispute: the service weighs it (budgets, two partners) before anything leaves a list.
ACTION_FOR_OPINION = {
    state.SignalOpinionCategory.POSITIVE_CLASS: "removed",
    state.SignalOpinionCategory.INVESTIGATION_SEED: "matched",
    state.SignalOpinionCategory.NEGATIVE_CLASS: "not_violating",
}
ACTIONS = ("pulled", "matched", "removed", "blocked", "not_violating")


@dataclass
class _HashguardConfigRequiredFields:
    base_url: str = field(metadata={
        "help": "the hashguard server, e.g. https://hashguard.example.org (https; plain http "
                "only to a loopback host)"})


@dataclass
class HashguardCollabConfig(CollaborationConfigWithDefaults, _HashguardConfigRequiredFields):
    api: str = field(init=False, default=API_NAME)
    page_size: int = field(default=DEFAULT_PAGE_SIZE, metadata={
        "help": "entries per request (1-10000)"})
    long_poll_seconds: int = field(default=0, metadata={
        "help": "once caught up, wait up to this many seconds (0-60) for new entries before "
                "a fetch ends; 0 ends at once"})


@dataclass
class HashguardCredentials(auth.CredentialHelper):
    ENV_VARIABLE: t.ClassVar[str] = "TX_HASHGUARD_KEY"
    FILE_NAME: t.ClassVar[str] = "~/.tx_hashguard_key"

    api_key: str = field(metadata={"help": "the partner key (`hashguard partners keys create`)"})

    @classmethod
    def _from_str(cls, s: str) -> "HashguardCredentials":
        return cls(s.strip())

    def _are_valid(self) -> bool:
        return bool(self.api_key) and not any(c.isspace() for c in self.api_key)


@dataclass
class HashguardCheckpoint(state.FetchCheckpointBase):
    # The server's next_cursor, passed back as it came: its format is the server's business.
    cursor: str
    # The newest logged_at seen so far, never decreasing (HMA refuses a checkpoint whose time
    # goes back); a display value only: resuming uses the cursor alone.
    progress_time: int = 0
    # The service's log was restored behind this cursor (409 `log_restored`): pytx's fetcher
    # then clears this collaboration's records and fetches from scratch (is_stale).
    log_restored: bool = False

    def is_stale(self) -> bool:
        return self.log_restored

    def get_progress_timestamp(self) -> t.Optional[int]:
        return self.progress_time or None


@dataclass
class HashguardSignalMetadata(state.FetchedSignalMetadata):
    signal_type: str
    value: str
    pathway: str
    logged_at: int
    quality: t.Optional[int] = None

    def get_as_opinions(self) -> t.Sequence[state.SignalOpinion]:
        # Every hash on the list comes from a person's own case: a seed to act on, labelled
        # with its pathway so a platform can treat the two lists differently.
        return [state.SignalOpinion(False, state.SignalOpinionCategory.INVESTIGATION_SEED,
                                    {self.pathway})]

    def __str__(self) -> str:
        quality = "" if self.quality is None else f" quality={self.quality}"
        return f"{self.pathway}{quality}"


def record_key(pathway: str, signal_type: str, value: str) -> str:
    if len(value) > KEY_VALUE_MAX_CHARS:
        value = "sha256:" + hashlib.sha256(value.encode("ascii", "replace")).hexdigest()
    return f"{pathway}/{signal_type}/{value}"


def entry_update(entry: dict) -> t.Tuple[str, t.Optional[HashguardSignalMetadata]]:
    """One log entry as (record key, record), the record None for a `remove`."""
    key = record_key(entry["pathway"], entry["signal_type"], entry["value"])
    if entry["op"] == "remove":
        return key, None
    return key, HashguardSignalMetadata(entry["signal_type"], entry["value"], entry["pathway"],
                                        int(entry.get("logged_at", 0)), entry.get("quality"))


class HashguardSignalExchangeAPI(
    auth.SignalExchangeWithAuth[HashguardCollabConfig, HashguardCredentials],
    signal_exchange_api.SignalExchangeAPI[
        HashguardCollabConfig, HashguardCheckpoint, HashguardSignalMetadata, str,
        HashguardSignalMetadata],
):
    """hashguard's /v1/partner API: pull the change log, report what was done with a hash."""

    def __init__(self, collab: HashguardCollabConfig, client: HashguardClient) -> None:
        self.collab = collab
        self.client = client

    @classmethod
    def get_name(cls) -> str:
        return API_NAME

    @staticmethod
    def get_config_cls() -> t.Type[HashguardCollabConfig]:
        return HashguardCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> t.Type[HashguardCheckpoint]:
        return HashguardCheckpoint

    @staticmethod
    def get_record_cls() -> t.Type[HashguardSignalMetadata]:
        return HashguardSignalMetadata

    @staticmethod
    def get_credential_cls() -> t.Type[HashguardCredentials]:
        return HashguardCredentials

    @classmethod
    def for_collab(cls, collab: HashguardCollabConfig,
                   credentials: t.Optional[HashguardCredentials] = None
                   ) -> "HashguardSignalExchangeAPI":
        credentials = credentials or HashguardCredentials.get(cls)
        check_base_url(collab.base_url)  # a bad URL fails here, before any fetch starts
        return cls(collab, HashguardClient(collab.base_url, credentials.api_key))

    def fetch_iter(self, _supported_signal_types: t.Sequence[t.Type[SignalType]],
                   checkpoint: t.Optional[HashguardCheckpoint]
                   ) -> t.Iterator[state.FetchDelta[str, HashguardSignalMetadata,
                                                    HashguardCheckpoint]]:
        # Every entry is kept, whatever types this runtime knows: the cursor moves past them,
        # so dropping them here would lose them for good once a type is installed later.
        # naive_convert_to_signal_type (HMA: at commit) skips what it cannot index.
        cursor = checkpoint.cursor if checkpoint else ""
        progress = checkpoint.progress_time if checkpoint else 0
        page_size = min(max(int(self.collab.page_size), 1), 10_000)
        long_poll = min(max(int(self.collab.long_poll_seconds), 0), MAX_LONG_POLL_SECONDS)
        wait, waited = 0, False
        while True:
            try:
                page = self.client.pull(cursor, page_size, wait=wait)
            except HashguardAPIError as refused:
                if refused.code != LOG_RESTORED:
                    raise
                logging.warning("hashguard: the service's log was restored from a backup; "
                                "its records will be fetched again from the start")
                yield state.FetchDelta({}, HashguardCheckpoint("", progress, log_restored=True))
                return
            updates: t.Dict[str, t.Optional[HashguardSignalMetadata]] = {}
            for entry in page["entries"]:  # in log order: a later entry for a key wins
                key, record = entry_update(entry)
                updates[key] = record
                progress = max(progress, int(entry.get("logged_at", 0)))
            cursor = page["next_cursor"]
            yield state.FetchDelta(updates, HashguardCheckpoint(cursor, progress))
            if page["has_more"]:
                wait = 0
                continue
            # Caught up. One long-poll per fetch at most, so that a fetch still ends (HMA runs
            # them on a timer, the CLI once per command).
            if waited or long_poll == 0:
                return
            wait, waited = long_poll, True

    @classmethod
    def naive_convert_to_signal_type(
        cls, signal_types: t.Sequence[t.Type[SignalType]], collab: HashguardCollabConfig,
        fetched: t.Mapping[str, t.Optional[HashguardSignalMetadata]],
    ) -> t.Dict[t.Type[SignalType], t.Dict[str, HashguardSignalMetadata]]:
        by_name = {st.get_name(): st for st in signal_types}
        converted: t.Dict[t.Type[SignalType], t.Dict[str, HashguardSignalMetadata]] = {}
        for record in fetched.values():
            if record is None:
                continue
            signal_type = by_name.get(record.signal_type)
            if signal_type is None:
                continue  # a type this runtime has not installed
            try:
                value = signal_type.validate_signal_str(record.value)
            except ValueError as refused:
                logging.warning("hashguard: skipping an invalid %s value: %s",
                                record.signal_type, str(refused)[:200])
                continue
            converted.setdefault(signal_type, {})[value] = record
        return converted

    # ---------------------------------------------------------------- feedback

    def report_opinion(self, s_type: t.Type[SignalType], signal: str,
                       opinion: state.SignalOpinion) -> None:
        """POSITIVE_CLASS -> removed, INVESTIGATION_SEED -> matched, NEGATIVE_CLASS ->
        not_violating (a dispute); the opinion's tags go along."""
        self.report_action(s_type.get_name(), signal, ACTION_FOR_OPINION[opinion.category],
                           opinion.tags)

    def report_seen(self, s_type: t.Type[SignalType], signal: str,
                    _metadata: t.Optional[HashguardSignalMetadata] = None) -> None:
        """A match was observed (pytx's planned report_seen, which its base class lacks)."""
        self.report_action(s_type.get_name(), signal, "matched")

    def report_action(self, signal_type: str, value: str, action: str,
                      tags: t.Iterable[str] = ()) -> None:
        """Any of hashguard's actions (pulled, matched, removed, blocked, not_violating)."""
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
        result = self.client.feedback([{"signal_type": signal_type, "value": value,
                                        "action": action, "tags": sorted(set(tags))}])
        if result.get("rejected"):
            rejection = result["rejected"][0]
            raise ValueError(f"hashguard refused the report: {rejection.get('code')}: "
                             f"{rejection.get('message')}")

"""What `hashguard submit` and `hashguard add` would send: the hashes of the files a person gave,
and, per file, why a file gives none (or only some) of its hashes.

Kept apart from the printing so the CLI can show every problem in one block and ask before
anything is sent (issue 18: a typo in a file name silently opened a case without that file).
Records sent are `signal_type`, `value` and `quality` only: no path, no file data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hashing.media import media_kind
from hashing.scan import Skipped, hash_media_file, iter_files


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str  # in English; the CLI words `failures` in the person's language
    partly: bool = False  # some of the file's hashes are sent, not all
    # The failed hash records ({signal_type, error_code, error}): codes the CLI can translate.
    failures: tuple[dict, ...] = ()


def _failure(code: str, message: str) -> tuple[dict, ...]:
    return ({"signal_type": None, "error_code": code, "error": message},)


@dataclass
class Collected:
    hashes: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Files found inside a given folder that are not media: worth a note, not a question.
    not_media: list[Path] = field(default_factory=list)
    files_sent: int = 0


def collect_hashes(paths: list[Path]) -> Collected:
    """Hash every media file under `paths`; duplicates (same type and value) are sent once."""
    collected = Collected()
    named = {Path(p) for p in paths}
    seen: dict[tuple[str, str], dict] = {}
    for item in iter_files(paths):
        if isinstance(item, Skipped):
            collected.problems.append(Problem(item.path, item.reason,
                                              failures=_failure("missing", item.reason)))
            continue
        if media_kind(item) is None:
            if item in named:  # named by the person: a mistake to point out, not a detail
                collected.problems.append(Problem(item, "not an image or video",
                                                  failures=_failure("not_media",
                                                                    "not an image or video")))
            else:
                collected.not_media.append(item)
            continue
        records = hash_media_file(item, media_kind(item))
        good = [r for r in records if "value" in r]
        bad = [r for r in records if "value" not in r]
        if bad:
            reasons = _reasons(bad, named_types=bool(good))
            collected.problems.append(Problem(item, reasons, partly=bool(good),
                                              failures=tuple(bad)))
        if good:
            collected.files_sent += 1
        for record in good:
            wire = {"signal_type": record["signal_type"], "value": record["value"]}
            if record.get("quality") is not None:
                wire["quality"] = record["quality"]
            seen.setdefault((wire["signal_type"], wire["value"]), wire)
    collected.hashes = list(seen.values())
    return collected


def _reasons(records: list[dict], named_types: bool) -> str:
    """One phrase for the file: its distinct reasons, naming the hash type only when some of the
    file's hashes are sent (then the person needs to know which are missing)."""
    phrases: list[str] = []
    for record in records:
        phrase = (f"{record['signal_type']}: {record['error']}" if named_types
                  else record["error"])
        if phrase not in phrases:
            phrases.append(phrase)
    return "; ".join(phrases)

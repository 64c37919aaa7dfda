"""A case's status in plain words, for the person reading `hashguard status` (the `--json` output
and the `case_ref:` / `status:` lines stay as they are, for scripts).

The counts are partners ("platforms" to a person), never names: what README's "What a case
status means" describes.
"""
from __future__ import annotations

STATUS_WORDS = {
    "active": "Platforms that take part use these hashes to find and block copies.",
    "withdrawn": "Withdrawn: platforms have been told to stop using these hashes.",
}
# What a platform did, as "<n> <words>"; the keys are the server's report names.
_DID = {
    "matched": "found a copy",
    "removed": "removed a copy",
    "blocked": "blocked an upload",
    "not_violating": "said what they found does not break their rules",
}


def _platforms(count: int) -> str:
    return f"{count} platform" + ("" if count == 1 else "s")


def status_sentence(status: str | None) -> str:
    return STATUS_WORDS.get(str(status), f"Status: {status}.")


def reports_sentence(reports: dict) -> str:
    """E.g. "Received by 3 platforms; 1 found a copy, 1 removed a copy." """
    counts = {str(name): int(count) for name, count in reports.items()
              if isinstance(count, int) and not isinstance(count, bool)}
    pulled = counts.pop("pulled", 0)
    head = (f"Received by {_platforms(pulled)}" if pulled
            else "No platform has received it yet")
    done = [f"{count} {_DID.get(name, name.replace('_', ' '))}"
            for name, count in counts.items() if count]
    return head + ("; " + ", ".join(done) if done else "") + "."

"""A case's status in plain words, for the person reading `hashguard status` (the `--json` output
and the `case_ref:` / `status:` lines stay as they are, for scripts), in the person's language
(hashing/i18n; English when none is given).

The counts are partners ("platforms" to a person), never names: what README's "What a case
status means" describes. The status sentences are the page's own (web/i18n: status.state_*), so
the page and the CLI say the same thing.
"""
from __future__ import annotations

from hashing.i18n import Words

_STATUS_PAGE_KEYS = {"active": "status.state_active", "withdrawn": "status.state_withdrawn"}
# What a platform did; the keys are the server's report names, as the catalogues' reports.<name>.
_DID = ("matched", "removed", "blocked", "not_violating")


def status_sentence(status: str | None, words: Words | None = None) -> str:
    words = words or Words()
    key = _STATUS_PAGE_KEYS.get(str(status))
    return words.page(key) if key else words.t("status.other", status=status)


def reports_sentence(reports: dict, words: Words | None = None) -> str:
    """E.g. "Received by 3 platforms; 1 found a copy, 1 removed a copy." """
    words = words or Words()
    counts = {str(name): int(count) for name, count in reports.items()
              if isinstance(count, int) and not isinstance(count, bool)}
    pulled = counts.pop("pulled", 0)
    head = words.t("reports.received", count=pulled) if pulled else words.t("reports.none")
    done = [words.t(f"reports.{name}", count=count) if name in _DID
            else words.t("reports.other", count=count, name=name.replace("_", " "))
            for name, count in counts.items() if count]
    if not done:
        return words.t("reports.sentence", head=head)
    return words.t("reports.sentence_with", head=head,
                   done=words.t("reports.separator").join(done))

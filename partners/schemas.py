"""Wire models of the partner API."""
from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["pulled", "matched", "removed", "blocked", "not_violating"]
Pathway = Literal["adult", "under18_at_capture"]


class Entry(BaseModel):
    seq: int
    op: Literal["add", "remove"]
    signal_type: str
    value: str
    pathway: Pathway
    quality: int | None = None
    logged_at: int = Field(description="Unix seconds when the entry was logged")
    also_shared: bool | None = Field(
        None, description="Only with `entries=per_pathway`, for a partner entitled to both "
                          "pathways: whether the hash is, at this entry, also shared under the "
                          "other pathway. An add with `also_shared`: a value already held gained "
                          "this pathway; a remove with it: the value lost this pathway and stays "
                          "shared under the other")


class Page(BaseModel):
    entries: list[Entry]
    next_cursor: str = Field(description="Pass back as `cursor`; opaque")
    has_more: bool
    tree_size: int = Field(description="Size of the partner's transparency tree (GET "
                                       "/v1/transparency/head) that covers every entry up to "
                                       "next_cursor; for a partner entitled to several pathways, "
                                       "the sum of tree_sizes")
    tree_sizes: dict[str, int] = Field(description="Per pathway of the partner: the size of that "
                                                   "pathway's tree (GET /v1/transparency/head?"
                                                   "pathway=...) covering every entry up to "
                                                   "next_cursor")
    log_epoch: int = Field(description="The log's epoch: 1, plus one per restore from a backup "
                                       "the service knows of. A cursor past a restored log's "
                                       "head is refused with 409 `log_restored`; nothing to do "
                                       "on a change otherwise (docs/partners.md)")


# What a partner may say about a hash besides its action: words from this vocabulary, never free
# text. Free text would sit beside a victim's hash (a name, a URL, right-to-left tricks for the
# operator's terminal), and odd code points (a NUL, a lone surrogate) broke PostgreSQL's insert.
FEEDBACK_TAGS = ("ncii", "sextortion", "csam", "nudity", "benign", "false_positive", "artwork",
                 "news", "duplicate", "other")
Tag = Literal[FEEDBACK_TAGS]


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal_type: str = Field(max_length=32)
    value: str = Field(max_length=400_000)
    action: Action
    tags: list[Tag] = Field(default_factory=list, max_length=20,
                            description="Words from a fixed vocabulary (never free text)")


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=10_000)


class FeedbackRejection(BaseModel):
    index: int
    code: str
    message: str


class FeedbackResult(BaseModel):
    accepted: int
    rejected: list[FeedbackRejection]


class MatchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal_type: str = Field(max_length=32)
    value: str = Field(max_length=400_000)


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hashes: list[MatchQuery] = Field(min_length=1, max_length=1_000)


# Match answers name a value longer than this by its SHA-256 instead of echoing it: a TMK
# value is 351 KB, and echoing each query and match made one answer 11.9 MB (issue 21). PDQ,
# MD5 and SHA-256 values (32-64 characters) are echoed as before.
ECHO_MAX_CHARS = 256


def value_fields(value: str) -> dict:
    """`value`, or `value_sha256` (lowercase hex SHA-256 of the value's ASCII text) if long."""
    if len(value) <= ECHO_MAX_CHARS:
        return {"value": value}
    return {"value_sha256": hashlib.sha256(value.encode("ascii", "replace")).hexdigest()}


_VALUE = ("The value itself, for values of at most 256 characters (PDQ, MD5, SHA-256)")
_VALUE_SHA256 = ("Instead of `value` for longer values (TMK, vPDQ): the lowercase hex SHA-256 "
                 "of the value's text")


class QueryEcho(BaseModel):
    signal_type: str
    value: str | None = Field(None, description=_VALUE + ", exactly as sent")
    value_sha256: str | None = Field(None, description=_VALUE_SHA256 + ", exactly as sent")


class Match(BaseModel):
    signal_type: str
    value: str | None = Field(None, description=_VALUE)
    value_sha256: str | None = Field(None, description=_VALUE_SHA256 + " (as pulled)")
    distance: float = Field(description="PDQ: Hamming bits; exact types: 0; TMK: 1 - level-2 score; "
                                        "vPDQ: 1 - the share of the query's frames that match")
    pathways: list[Pathway] = Field(description="The partner's pathways the matched hash is "
                                                "shared under (both when it is shared under "
                                                "both; never one the partner is not entitled to)")


class MatchResult(BaseModel):
    query: QueryEcho
    matches: list[Match] = Field(description="TMK: at most 16, the most similar first at "
                                             "level 1 (a bound on a query's cost); vPDQ: at most "
                                             "16, the highest query match share first")
    error: dict | None = None


class MatchResponse(BaseModel):
    results: list[MatchResult]

"""Wire models of the partner API."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["pulled", "matched", "removed", "blocked", "not_violating"]


class Entry(BaseModel):
    seq: int
    op: Literal["add", "remove"]
    signal_type: str
    value: str
    pathway: Literal["adult", "under18_at_capture"]
    quality: int | None = None
    logged_at: int = Field(description="Unix seconds when the entry was logged")


class Page(BaseModel):
    entries: list[Entry]
    next_cursor: str = Field(description="Pass back as `cursor`; opaque")
    has_more: bool
    tree_size: int = Field(description="Size of the transparency log (GET /v1/transparency/head) "
                                       "that covers every entry up to next_cursor")


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal_type: str = Field(max_length=32)
    value: str = Field(max_length=400_000)
    action: Action
    tags: list[str] = Field(default_factory=list, max_length=20)


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


class Match(BaseModel):
    signal_type: str
    value: str
    distance: float = Field(description="PDQ: Hamming bits; exact types: 0; TMK: 1 - level-2 score")


class MatchResult(BaseModel):
    query: MatchQuery
    matches: list[Match]
    error: dict | None = None


class MatchResponse(BaseModel):
    results: list[MatchResult]

"""Wire models (Pydantic) of the case API; storage models live in store/models.py."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Pathway = Literal["adult", "under18_at_capture"]


def utc_z(value: datetime | str) -> str:
    """A stored time as ISO 8601 in UTC with `Z`. SQLite hands back naive datetimes (it keeps no
    offset), PostgreSQL aware ones in the session's zone; without an offset a browser reads the
    time as its own local time (9 hours off in Japan). Every stored time is written in UTC
    (store/cases.py), so a naive one is UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


UtcTime = Annotated[str, BeforeValidator(utc_z)]


class HashIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal_type: str = Field(max_length=32, examples=["pdq"])
    value: str = Field(max_length=400_000, description="Hash value in python-threatexchange form")
    quality: int | None = Field(None, ge=0, le=100, description="PDQ quality (required for pdq)")


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pathway: Pathway = Field(description="Was the person under 18 when the image was taken?")
    hashes: list[HashIn] = Field(min_length=1)


class HashesAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hashes: list[HashIn] = Field(min_length=1)


class CaseCreated(BaseModel):
    case_ref: str
    token: str = Field(description="Shown once; only a keyed verifier of it is stored")
    status: str
    pathway: Pathway
    hash_count: int


class PartnerReports(BaseModel):
    """How many distinct partners reported each action for this hash (never which partner)."""
    pulled: int = 0
    matched: int = 0
    removed: int = 0
    blocked: int = 0
    not_violating: int = 0


class HashStatus(BaseModel):
    signal_type: str
    value: str
    quality: int | None = None
    reports: PartnerReports


class ClientLimits(BaseModel):
    """What one client may send (the page and the CLI split larger submits to fit)."""
    max_hashes_per_request: int
    max_hashes_per_case: int
    max_value_bytes_per_request: int | None = Field(
        None, description="Bytes of hash values per request (a TMK value is 351,128); 0: none")
    max_value_bytes_per_case: int | None = Field(
        None, description="Bytes of hash values per case; 0: none")


class CaseStatus(BaseModel):
    case_ref: str
    status: Literal["active", "withdrawn"]
    pathway: Pathway
    created: UtcTime = Field(description="Creation time, to the hour (ISO 8601 in UTC, with Z)",
                             examples=["2026-12-01T15:00:00Z"])
    updated: UtcTime = Field(description="Last change, to the hour (ISO 8601 in UTC, with Z)",
                             examples=["2026-12-01T15:00:00Z"])
    hashes: list[HashStatus]


class HashesAdded(BaseModel):
    case_ref: str
    added: int
    hash_count: int

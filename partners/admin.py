"""Operator actions on partners and their keys (used by `hashguard partners ...`)."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import PATHWAYS, Partner, PartnerKey
from store.secrets import new_secret_token, verifier

KEY_PURPOSE = "partner-key"
KEY_PREFIX = "hgp"
_KEY_ID = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() accepts "²"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class AdminError(ValueError):
    pass


def _now() -> datetime:
    return datetime.now(timezone.utc)


def parse_pathways(text: str) -> list[str]:
    pathways = sorted({p.strip() for p in text.split(",") if p.strip()})
    unknown = [p for p in pathways if p not in PATHWAYS]
    if not pathways or unknown:
        raise AdminError(f"pathways must be a comma-separated subset of {', '.join(PATHWAYS)}")
    return pathways


def add_partner(session: Session, name: str, pathways: list[str]) -> Partner:
    if not _NAME.fullmatch(name):
        raise AdminError("a partner name is 1-64 letters, digits, '.', '_' or '-'")
    if find_partner(session, name) is not None:
        raise AdminError(f"partner {name!r} exists already")
    partner = Partner(name=name, pathways=",".join(pathways), created_at=_now(), acknowledged_seq=0)
    session.add(partner)
    session.flush()
    return partner


def find_partner(session: Session, name: str) -> Partner | None:
    return session.scalars(select(Partner).where(Partner.name == name)).first()


def require_partner(session: Session, name: str) -> Partner:
    partner = find_partner(session, name)
    if partner is None:
        raise AdminError(f"no partner named {name!r}")
    return partner


def create_key(session: Session, partner: Partner, server_secret: bytes) -> str:
    """A new key, returned once: `hgp_<key id>_<secret>`; only the verifier is stored."""
    secret = new_secret_token()
    key = PartnerKey(partner_id=partner.id, verifier=verifier(server_secret, KEY_PURPOSE, secret),
                     created_at=_now())
    session.add(key)
    session.flush()
    return f"{KEY_PREFIX}_{key.id}_{secret}"


def split_key(presented: str) -> tuple[int, str] | None:
    """(key id, secret) of a presented key, or None if it is not shaped like one."""
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not _KEY_ID.fullmatch(key_id) or not secret:
        return None
    return int(key_id), secret


def revoke(session: Session, partner: Partner, key_id: int | None = None) -> int:
    """Revoke one key of the partner (by id) or all of them; returns how many were revoked."""
    query = select(PartnerKey).where(PartnerKey.partner_id == partner.id,
                                     PartnerKey.revoked_at.is_(None))
    if key_id is not None:
        query = query.where(PartnerKey.id == key_id)
    keys = session.scalars(query).all()
    for key in keys:
        key.revoked_at = _now()
    return len(keys)


def list_partners(session: Session) -> list[tuple[Partner, int]]:
    """Partners with their count of active keys."""
    partners = session.scalars(select(Partner).order_by(Partner.name)).all()
    keys = session.scalars(select(PartnerKey).where(PartnerKey.revoked_at.is_(None))).all()
    counts: dict[int, int] = {}
    for key in keys:
        counts[key.partner_id] = counts.get(key.partner_id, 0) + 1
    return [(p, counts.get(p.id, 0)) for p in partners]

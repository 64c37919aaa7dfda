"""The declarative base every table derives from, and the id type they share: its own module so
that store/models.py and store/transparency_models.py both build on it without importing each
other (they once did, and worked only by the order of their imports)."""
from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import DeclarativeBase

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass

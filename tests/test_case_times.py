"""Times in the case API carry their offset (issue 18): ISO 8601 in UTC with `Z`, on SQLite
(which stores no offset and answered "2026-12-01T15:00:00", read by a browser as its own local
time, 9 hours off in Japan) and on PostgreSQL (which answers in the session's zone)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from api.schemas import utc_z
from tests.helpers import auth, new_case

PDQ = "f" * 32 + "0" * 32
Z_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:00:00Z")


def _parsed(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_status_and_withdraw_answer_utc_with_z(client):
    case = new_case(client, [PDQ])
    before = datetime.now(timezone.utc)
    views = [client.get(f"/v1/cases/{case['case_ref']}", headers=auth(case["token"])).json(),
             client.post(f"/v1/cases/{case['case_ref']}/withdraw",
                         headers=auth(case["token"])).json()]
    for view in views:
        for field in ("created", "updated"):
            assert Z_TIME.fullmatch(view[field]), view[field]
            # To the hour, in UTC: within the last hour of now, whatever zone the database is in.
            assert timedelta(0) <= before - _parsed(view[field]) < timedelta(hours=1, minutes=1)


def test_utc_z_converts_every_stored_form():
    tokyo = timezone(timedelta(hours=9))
    assert utc_z(datetime(2026, 12, 2, 0, 0, tzinfo=tokyo)) == "2026-12-01T15:00:00Z"
    assert utc_z(datetime(2026, 12, 1, 15, 0)) == "2026-12-01T15:00:00Z"  # SQLite: naive is UTC
    assert utc_z("2026-12-01T15:00:00") == "2026-12-01T15:00:00Z"
    assert utc_z("2026-12-02T00:00:00+09:00") == "2026-12-01T15:00:00Z"

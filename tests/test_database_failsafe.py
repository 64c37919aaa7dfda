"""A failing database fails safe (issue 23): writes answer 503 `database_unavailable` with
Retry-After instead of 500, reads that need no write keep working, `/readyz` says not ready and
recovers by itself, an export cut by the database ends with an error line, and no log line holds
a submitted value. The database is broken for real: made read-only (as a standby, or an operator
freezing it) or made to refuse connections, and its sessions terminated."""
from __future__ import annotations

import json
import logging

import httpx
import pytest

from partners import feed
from tests.hashes import BRIDGE, C_PNG, Q0122, Q0291, Q1050, pdq
from tests.helpers import admin_connection, bearer, new_case

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

# Values that only ever travel while the database is broken: none may reach a log line.
SECRET_VALUES = [Q0122, Q0291, Q1050]


def _name(app) -> str:
    return app.state.database.engine.url.database


def _terminate(conn, name: str) -> None:
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


def make_read_only(app) -> None:
    """Read-only from the next session on; the service's current sessions are ended."""
    name = _name(app)
    with admin_connection() as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        _terminate(conn, name)


def make_writable(app) -> None:
    """Writable again for new sessions; sessions opened meanwhile stay read-only (the service
    must replace them by itself)."""
    with admin_connection() as conn:
        conn.execute(f'ALTER DATABASE "{_name(app)}" RESET default_transaction_read_only')


def make_unreachable(app) -> None:
    name = _name(app)
    with admin_connection() as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        _terminate(conn, name)


def make_reachable(app) -> None:
    with admin_connection() as conn:
        conn.execute(f'ALTER DATABASE "{_name(app)}" ALLOW_CONNECTIONS true')


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def stopncii_headers(key: str) -> dict:
    return {"Ocp-Apim-Subscription-Key": key, "x-functions-key": key}


def write_calls(client, case, key, values=(Q0122,)):
    """A call to each write endpoint, with `values` as the new hashes."""
    hashes = [pdq(v) for v in values]
    ref, token = case["case_ref"], case["token"]
    return [
        lambda: client.post("/v1/cases", json={"pathway": "adult", "hashes": hashes}),
        lambda: client.post(f"/v1/cases/{ref}/hashes", headers=bearer(token),
                            json={"hashes": hashes}),
        lambda: client.post("/v1/partner/feedback", headers=bearer(key), json={"feedback": [
            {"signal_type": "pdq", "value": BRIDGE, "action": "removed"}]}),
        lambda: client.post("/stopncii/v1/SubmitFeedback", headers=stopncii_headers(key), json={
            "hashFeedbacks": [{"hashValue": BRIDGE, "feedbackValue": "Blocked"}]}),
        lambda: client.post(f"/v1/cases/{ref}/withdraw", headers=bearer(token)),
    ]


def every_write(client, case, key, values=(Q0122,)):
    return [call() for call in write_calls(client, case, key, values)]


def test_a_read_only_database_refuses_writes_with_503_and_keeps_serving_reads(
        client, app, make_partner, monkeypatch):
    monkeypatch.setattr(feed, "ACKNOWLEDGE_EVERY_SECONDS", 0)  # every pull tries to write
    key = make_partner("platform", "adult")
    case = new_case(client, [BRIDGE])
    assert client.get("/readyz").status_code == 200

    make_read_only(app)
    for _ in range(2):  # the first meets sessions ended, the second read-only sessions
        for response in every_write(client, case, key):
            assert_unavailable(response)
    # Reads need no write: the pull's acknowledgement is best-effort.
    pulled = client.get("/v1/partner/hashes", headers=bearer(key))
    assert pulled.status_code == 200, pulled.text
    assert [e["value"] for e in pulled.json()["entries"]] == [BRIDGE]
    fetched = client.get("/stopncii/v1/FetchHashes", headers=stopncii_headers(key))
    assert fetched.status_code == 200, fetched.text
    assert [r["hashValue"] for r in fetched.json()["hashRecords"]] == [BRIDGE]
    exported = client.get("/v1/partner/hashes/export", headers=bearer(key))
    assert exported.status_code == 200 and "next_cursor" in exported.text.splitlines()[-1]
    status = client.get(f"/v1/cases/{case['case_ref']}", headers=bearer(case["token"]))
    assert status.status_code == 200, status.text
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").status_code == 503

    make_writable(app)  # the service's read-only sessions are still open: it must recover alone
    assert client.get("/readyz").status_code == 200
    recovered = [r.status_code for r in every_write(client, case, key, values=(Q0291,))]
    assert recovered == [201, 200, 200, 200, 200]
    assert client.get("/readyz").status_code == 200


def test_an_unreachable_database_answers_503_and_readyz_recovers(client, app, make_partner):
    key = make_partner("platform", "adult")
    case = new_case(client, [BRIDGE])
    make_unreachable(app)
    try:
        for response in every_write(client, case, key):
            assert_unavailable(response)
        # A read that cannot reach the database cannot answer either: 503, not 500.
        assert_unavailable(client.get("/v1/partner/hashes", headers=bearer(key)))
        assert_unavailable(client.get("/v1/partner/hashes/export", headers=bearer(key)))
        assert client.get("/readyz").status_code == 503
    finally:
        make_reachable(app)
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/cases", json={"pathway": "adult", "hashes": [pdq(Q1050)]}
                       ).status_code == 201


def test_an_export_cut_by_the_database_ends_with_an_error_line(client, app, make_partner,
                                                                monkeypatch):
    key = make_partner("platform", "adult")
    new_case(client, [BRIDGE, C_PNG, Q0122])
    monkeypatch.setattr(feed, "MAX_PAGE", 1)  # one entry per page, so the stream has three
    whole = [json.loads(line).get("value") for line in client.get(
        "/v1/partner/hashes/export", headers=bearer(key)).text.splitlines()]
    assert len(whole) == 4 and whole[-1] is None  # three entries, then the next_cursor line
    read_page, pages = feed.read_page, []

    def read_page_then_break(*args, **kwargs):
        pages.append(1)
        if len(pages) == 2:  # after the first page was sent: the database goes away for real
            make_unreachable(app)
        return read_page(*args, **kwargs)

    monkeypatch.setattr(feed, "read_page", read_page_then_break)
    try:
        response = client.get("/v1/partner/hashes/export", headers=bearer(key))
    finally:
        make_reachable(app)
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line.get("value") for line in lines[:-1]] == whole[:1]
    assert lines[-1]["error"]["code"] == "database_unavailable"
    assert not any("next_cursor" in line for line in lines)
    # Where to continue: right after the entry sent, so nothing is skipped or repeated.
    rest = client.get("/v1/partner/hashes/export", headers=bearer(key),
                      params={"cursor": lines[-1]["resume_cursor"]})
    assert [json.loads(line).get("value") for line in rest.text.splitlines()] == whole[1:]


class _Everything(logging.Handler):
    """Every record, as text with its traceback, whatever the logger's own handlers do."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record):
        self.lines.append(self.format(record))


def test_no_log_line_or_answer_holds_a_value_sent_while_the_database_fails(
        live_server, app, make_partner, capfd):
    key = make_partner("platform", "adult")
    client = httpx.Client(base_url=live_server, timeout=30)
    case = client.post("/v1/cases", json={"pathway": "adult", "hashes": [pdq(BRIDGE)]}).json()
    capture = _Everything()
    names = ["", "hashguard", "uvicorn", "uvicorn.error", "sqlalchemy", "sqlalchemy.engine"]
    for name in names:
        logging.getLogger(name).addHandler(capture)
    bodies, statuses = [], []
    try:
        for breaking, mending in ((make_read_only, make_writable),
                                  (make_unreachable, make_reachable)):
            breaking(app)
            try:
                for call in write_calls(client, case, key, values=SECRET_VALUES):
                    try:
                        response = call()
                    except httpx.HTTPError as failed:  # the old code could cut the connection
                        bodies.append(repr(failed))
                        continue
                    bodies.append(response.text)
                    statuses.append(response.status_code)
            finally:
                mending(app)
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(capture)
        client.close()
    out, err = capfd.readouterr()
    logged = "\n".join(capture.lines + [out, err])
    # No statement's parameters (the old code logged a case reference and a token verifier
    # with the failing statement), and none of the values sent.
    assert "[parameters:" not in logged
    assert case["case_ref"] not in logged
    for value in SECRET_VALUES:
        assert value not in logged
        assert value.upper() not in logged.upper()
        assert not any(value in body for body in bodies)
    assert statuses == [503] * 10, bodies
    assert "database unavailable" in logged  # the operator does get a line

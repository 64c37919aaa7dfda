"""Privacy, tested: no address, user agent, token or partner key in the database or the logs;
logs are structured JSON; withdrawal leaves no case-hash link; tables have no personal columns."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect

from store.db import make_engine
from tests.hashes import BRIDGE, C_PNG, Q0122
from tests.helpers import database_dump

UA = "PrivacyProbe/1.0 unique-ua-7731"
ADDRESS = "203.0.113.77"
PERSONAL_COLUMN_WORDS = ("ip", "addr", "agent", "email", "mail", "phone", "name", "note",
                         "comment", "message", "text", "description", "location")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hashguard(*args, env) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("hashguard")
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, check=True)


def _exercise(base: str, partner_key: str) -> dict:
    """Every kind of request a person and a partner make; returns the secrets that were used."""
    headers = {"User-Agent": UA, "X-Forwarded-For": ADDRESS}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        case = http.post("/v1/cases", json={"pathway": "adult", "hashes": [
            {"signal_type": "pdq", "value": BRIDGE, "quality": 100},
            {"signal_type": "pdq", "value": C_PNG, "quality": 100}]}).json()
        auth = {"Authorization": f"Bearer {case['token']}"}
        assert http.get(f"/v1/cases/{case['case_ref']}", headers=auth).status_code == 200
        http.post(f"/v1/cases/{case['case_ref']}/hashes", headers=auth, json={"hashes": [
            {"signal_type": "pdq", "value": Q0122, "quality": 100}]})
        partner = {"Authorization": f"Bearer {partner_key}"}
        pulled = http.get("/v1/partner/hashes", headers=partner).json()
        http.get("/v1/partner/hashes", params={"cursor": pulled["next_cursor"]}, headers=partner)
        http.post("/v1/partner/feedback", headers=partner, json={"feedback": [
            {"signal_type": "pdq", "value": BRIDGE, "action": "removed"}]})
        http.get("/v1/cases/HG-2222-2222", headers={"Authorization": "Bearer wrong"})
        withdrawn = http.post(f"/v1/cases/{case['case_ref']}/withdraw", headers=auth)
        assert withdrawn.json()["status"] == "withdrawn"
    return {"token": case["token"], "partner key": partner_key, "user agent": UA,
            "forwarded address": ADDRESS, "loopback address": "127.0.0.1",
            "case reference": case["case_ref"], "hash value": BRIDGE}


def test_running_server_logs_json_without_personal_data_and_stores_none(tmp_path):
    env = {**os.environ, "HASHGUARD_DATA_DIR": str(tmp_path)}
    env.pop("HASHGUARD_DATABASE_URL", None)
    _hashguard("partners", "add", "probeco", "--pathways", "adult", env=env)
    key = _hashguard("partners", "keys", "create", "probeco", env=env).stdout.strip().splitlines()[-1]
    port = _free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([str(Path(sys.executable).with_name("hashguard")), "serve",
                                   "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        secrets = _exercise(base, key)
    finally:
        server.terminate()
        server.wait(10)
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is a JSON object
    assert any(r.get("route") == "/v1/cases/{case_ref}" for r in records)
    # uvicorn's own "running on http://127.0.0.1:port" names the server, not a client.
    log_text = "\n".join(line for line, r in zip(lines, records)
                         if "Uvicorn running on" not in r.get("message", ""))
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("hashguard.db*"))
    for what, secret in secrets.items():
        assert secret not in log_text, f"the {what} appears in the logs"
    for what in ("token", "partner key", "user agent", "forwarded address", "loopback address"):
        assert secrets[what].encode() not in stored, f"the {what} is stored in the database"


def test_database_dump_holds_no_secret_or_request_metadata(client, make_partner, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    key = make_partner("probeco", "adult")
    handler_records = []
    capture = logging.Handler()
    capture.emit = handler_records.append
    logging.getLogger("hashguard").addHandler(capture)
    try:
        with client:
            base_headers = {"User-Agent": UA, "X-Forwarded-For": ADDRESS}
            case = client.post("/v1/cases", headers=base_headers, json={"pathway": "adult", "hashes": [
                {"signal_type": "pdq", "value": BRIDGE, "quality": 100}]}).json()
            client.get(f"/v1/cases/{case['case_ref']}", headers={
                **base_headers, "Authorization": f"Bearer {case['token']}"})
            client.get("/v1/partner/hashes", headers={**base_headers, "Authorization": f"Bearer {key}"})
    finally:
        logging.getLogger("hashguard").removeHandler(capture)
    dump = database_dump(database_url)
    logged = "\n".join(r.getMessage() + json.dumps(getattr(r, "fields", {})) for r in handler_records)
    key_secret = key.split("_", 2)[2]  # hgp_<id>_<secret>; the secret may contain "_" itself
    for secret in (case["token"], key, key_secret, UA, ADDRESS):
        assert secret not in dump and secret not in logged and secret not in caplog.text


def test_no_table_has_a_column_for_personal_data(database_url):
    engine = make_engine(database_url)
    inspector = inspect(engine)
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            words = column["name"].lower().split("_")
            if table == "partners" and column["name"] == "name":
                continue  # a platform's name, entered by the operator; never a person's
            assert not set(words) & set(PERSONAL_COLUMN_WORDS), f"{table}.{column['name']}"
    engine.dispose()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/v1/cases/HG-2222-2222"])
def test_security_headers_and_closed_cors_everywhere(client, path):
    response = client.get(path, headers={"Origin": "https://evil.example"})
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/v1/cases", headers={"Origin": "https://evil.example",
                                                      "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_metrics_name_routes_not_cases(client):
    case = client.post("/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "pdq", "value": BRIDGE, "quality": 100}]}).json()
    client.get(f"/v1/cases/{case['case_ref']}", headers={"Authorization": f"Bearer {case['token']}"})
    text = client.get("/metrics").text
    assert 'route="/v1/cases/{case_ref}"' in text and case["case_ref"] not in text

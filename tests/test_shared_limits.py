"""Issue 23: limits shared by every process. Two real `hashguard serve` processes on one
PostgreSQL database, a guesser spreading its tries over both (and over many addresses), and the
case's owner, who must never be locked out by someone else's wrong guesses."""
from __future__ import annotations

import time

import httpx
import pytest

from store.secrets import new_secret_token
from tests.hashes import BRIDGE
from tests.reliability.server import ServerProcess, add_partner, server_env, throwaway_postgres

# Small budgets (the defaults are 10, 60 and 20 a minute): each refills one try every 10-15 s,
# so a machine under load that answers slowly does not refill them while a test spends them.
PER_CASE = 5
PER_CLIENT = 6
KEY_FAILURES = 4
OWNER = {"X-Forwarded-For": "198.51.100.9"}
REF_DIGITS = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # a reference's alphabet (store/cases.py)

pytestmark = pytest.mark.slow  # two server processes start (~10 s on this machine)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("shared-limits")
    with throwaway_postgres("limits") as url:
        env = server_env(data_dir, HASHGUARD_TRUST_FORWARDED_FOR="1",
                         HASHGUARD_TOKEN_LOOKUPS_PER_MINUTE_PER_CASE=str(PER_CASE),
                         HASHGUARD_TOKEN_LOOKUPS_PER_MINUTE_PER_CLIENT=str(PER_CLIENT),
                         HASHGUARD_PARTNER_KEY_FAILURES_PER_MINUTE_PER_CLIENT=str(KEY_FAILURES),
                         # Every request logged: the last test greps the logs for addresses.
                         HASHGUARD_LOG_LEVEL="INFO")
        key = add_partner(url, env, "platformco", "adult")
        servers = [ServerProcess(url, env), ServerProcess(url, env)]
        try:
            for server in servers:
                server.start()
            yield [s.base_url for s in servers], key, url, servers[0].log
        finally:
            for server in servers:
                server.stop()


def _submit(base: str) -> dict:
    answer = httpx.post(base + "/v1/cases", headers=OWNER, json={
        "pathway": "adult", "hashes": [{"signal_type": "pdq", "value": BRIDGE, "quality": 100}]})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _auth(token: str, address: dict) -> dict:
    return {"Authorization": f"Bearer {token}", **address}


def _refilled(started: float, count: int) -> int:
    """Tries that refilled while the test ran (a loaded machine is slow), plus one."""
    return int((time.monotonic() - started) * count / 60) + 1


def test_wrong_tokens_on_a_reference_are_limited_across_both_processes(two_servers):
    """A guesser using both processes and a new address per guess: PER_CASE wrong answers a
    minute on the reference in all, not PER_CASE per process (no per-address budget binds)."""
    (a, b), _, _, _ = two_servers
    case = _submit(a)
    started = time.monotonic()
    statuses = [httpx.get(f"{(a, b)[i % 2]}/v1/cases/{case['case_ref']}",
                          headers=_auth("wrong-guess", {"X-Forwarded-For": f"203.0.113.{i}"})
                          ).status_code for i in range(2 * PER_CASE + 4)]
    assert set(statuses) == {404, 429}
    assert statuses[:PER_CASE] == [404] * PER_CASE
    assert statuses.count(404) <= PER_CASE + _refilled(started, PER_CASE)
    assert statuses[-1] == 429


def test_the_owner_s_right_token_works_while_its_reference_is_attacked(two_servers):
    """Status and withdraw with the right token, on both processes, while the reference's budget
    is spent, also from the guesser's own address; wrong tokens keep getting 429."""
    (a, b), _, _, _ = two_servers
    case = _submit(b)
    ref, guesser = case["case_ref"], {"X-Forwarded-For": "203.0.113.200"}
    for i in range(2 * PER_CASE + 2):
        httpx.get(f"{(a, b)[i % 2]}/v1/cases/{ref}", headers=_auth("wrong-guess", guesser))
    for base in (a, b):
        assert httpx.get(f"{base}/v1/cases/{ref}",
                         headers=_auth("wrong-guess", guesser)).status_code == 429
        assert httpx.get(f"{base}/v1/cases/{ref}",
                         headers=_auth(case["token"], OWNER)).status_code == 200
        assert httpx.get(f"{base}/v1/cases/{ref}",
                         headers=_auth(case["token"], guesser)).status_code == 200
    assert httpx.post(f"{a}/v1/cases/{ref}/withdraw",
                      headers=_auth("wrong-guess", guesser)).status_code == 429
    withdrawn = httpx.post(f"{a}/v1/cases/{ref}/withdraw", headers=_auth(case["token"], OWNER))
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    again = httpx.get(f"{b}/v1/cases/{ref}", headers=_auth(case["token"], OWNER))
    assert again.status_code == 200 and again.json()["status"] == "withdrawn"


def test_one_address_guessing_many_references_is_limited_across_both_processes(two_servers):
    (a, b), _, _, _ = two_servers
    guesser = {"X-Forwarded-For": "192.0.2.77"}
    started = time.monotonic()
    # A new reference per guess: only the per-address budget can bind.
    statuses = [httpx.get(f"{(a, b)[i % 2]}/v1/cases/HG-ZZZZ-{REF_DIGITS[i]}222",
                          headers=_auth("wrong-guess", guesser)).status_code
                for i in range(2 * PER_CLIENT + 4)]
    assert statuses[:PER_CLIENT] == [404] * PER_CLIENT
    assert statuses.count(404) <= PER_CLIENT + _refilled(started, PER_CLIENT)
    assert statuses[-1] == 429


def test_failed_partner_keys_are_limited_across_both_processes(two_servers):
    (a, b), key, _, _ = two_servers
    guesser = {"X-Forwarded-For": "192.0.2.99"}
    prefix, key_id, _ = key.split("_", 2)
    wrong = f"{prefix}_{key_id}_{new_secret_token()}"  # the real key id, a made-up secret
    started = time.monotonic()
    answers = [httpx.get(f"{(a, b)[i % 2]}/v1/partner/hashes", headers=_auth(wrong, guesser))
               for i in range(2 * KEY_FAILURES + 4)]
    statuses = [r.status_code for r in answers]
    assert statuses[:KEY_FAILURES] == [401] * KEY_FAILURES
    assert statuses.count(401) <= KEY_FAILURES + _refilled(started, KEY_FAILURES)
    assert answers[-1].status_code == 429
    assert answers[-1].json()["error"]["code"] == "too_many_failed_keys"
    # The right key from elsewhere is served by both; from the guesser's address it waits (the
    # budget refills one try every 15 s: far longer than these four requests take).
    for base in (a, b):
        assert httpx.get(f"{base}/v1/partner/hashes", headers=_auth(key, OWNER)).status_code == 200
        assert httpx.get(f"{base}/v1/partner/hashes",
                         headers=_auth(key, guesser)).status_code == 429


def test_the_shared_table_holds_no_address_or_reference_in_clear(two_servers):
    (a, _), _, url, log = two_servers
    case = _submit(a)
    address = "203.0.113.251"
    httpx.get(f"{a}/v1/cases/{case['case_ref']}", headers=_auth("x", {"X-Forwarded-For": address}))
    import psycopg

    from store.db import libpq_conninfo

    with psycopg.connect(libpq_conninfo(url)) as conn:
        rows = conn.execute("SELECT key, due, refused FROM limit_counters").fetchall()
    assert rows
    dump = repr(rows).encode() + b"".join(bytes(r[0]) for r in rows)
    for clear in (case["case_ref"], address, "203.0.113"):
        assert clear.encode() not in dump
    assert all(len(bytes(r[0])) == 16 for r in rows)
    # Nor in the servers' logs (both write to the same file), after every test above.
    logged = log.read_text(errors="replace")
    assert "429" in logged and "/v1/cases/{case_ref}" in logged  # the refusals were logged
    for clear in (case["case_ref"], "203.0.113.", "198.51.100.", "192.0.2.", "wrong-guess"):
        assert clear not in logged

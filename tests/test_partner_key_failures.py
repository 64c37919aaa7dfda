"""Failed partner-key attempts are capped per client address (issue 21: 1,600 wrong keys from one
address were all answered 401, never 429), on the native API and the StopNCII surface alike. The
guesses cross real HTTP to the app under uvicorn (tests/conftest.py, served_over_http)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import event

from api.app import create_app
from api.settings import Settings
from partners import admin
from store.secrets import new_secret_token

PER_MINUTE = 20
GUESSER = {"X-Forwarded-For": "203.0.113.7"}
ELSEWHERE = {"X-Forwarded-For": "198.51.100.9"}
NATIVE = "/v1/partner/hashes"
STOPNCII = "/stopncii/v1/FetchHashes"


@pytest.fixture
def limited_app(database_url, tmp_path, serve_over_http):
    # The proxy is trusted so that X-Forwarded-For can stand for different client addresses.
    settings = Settings(database_url=database_url, data_dir=tmp_path, trust_forwarded_for=True,
                        case_writes_per_hour_per_client=0, token_lookups_per_minute_per_client=0,
                        partner_requests_per_second=10**6,
                        partner_key_failures_per_minute_per_client=PER_MINUTE)
    app = create_app(settings, run_migrations=False)
    with serve_over_http(app, wait_for_match_index=False) as client:
        app.state.test_client = client
        yield app
    app.state.database.dispose()


@pytest.fixture
def partner_key(limited_app) -> str:
    with limited_app.state.database.transaction() as session:
        partner = admin.add_partner(session, "platformco", admin.parse_pathways("adult"))
        return admin.create_key(session, partner, limited_app.state.server_secret)


def wrong_key(right_key: str) -> str:
    """A well-formed guess: the real key id with a made-up secret (the costliest to check)."""
    return f"{right_key.split('.')[0]}.{new_secret_token()}"


def bearer(key: str, address: dict) -> dict:
    return {"Authorization": f"Bearer {key}", **address}


def stopncii_headers(key: str, address: dict) -> dict:
    return {"Ocp-Apim-Subscription-Key": key, "X-Functions-Key": key, **address}


@pytest.mark.slow  # ~15 s per database
def test_a_guesser_is_refused_well_before_1600_tries(limited_app, partner_key):
    client = limited_app.state.test_client
    started = time.monotonic()
    answers = [client.get(NATIVE, headers=bearer(wrong_key(partner_key), GUESSER))
               for _ in range(1600)]
    elapsed = time.monotonic() - started
    statuses = [a.status_code for a in answers]
    refilled = elapsed * PER_MINUTE / 60  # one more try every 3 s while the test ran
    assert set(statuses) == {401, 429}
    assert statuses.index(429) <= PER_MINUTE + refilled  # the 21st try, on a machine not stalled
    # After that, only what refilled gets an answer at all.
    assert statuses.count(401) <= PER_MINUTE + refilled + 1
    refused = answers[-1]
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert refused.json()["error"]["code"] == "too_many_failed_keys"


def test_the_stopncii_surface_shares_the_cap(limited_app, partner_key):
    client = limited_app.state.test_client
    for _ in range(PER_MINUTE // 2):  # half the budget spent on the native API ...
        guess = client.get(NATIVE, headers=bearer(wrong_key(partner_key), GUESSER))
        assert guess.status_code == 401
    statuses = [client.get(STOPNCII, headers=stopncii_headers(wrong_key(partner_key), GUESSER))
                .status_code for _ in range(PER_MINUTE)]
    assert statuses[:PER_MINUTE // 2] == [401] * (PER_MINUTE // 2)  # ... the rest on StopNCII's
    assert statuses[-1] == 429  # (not all of the second half: a stalled machine refills one)
    refused = client.get(STOPNCII, headers=stopncii_headers(wrong_key(partner_key), GUESSER))
    assert refused.json()["error"]["code"] == "too_many_failed_keys"
    assert refused.headers["Retry-After"] == "60"


def test_the_right_key_from_another_address_is_never_refused_for_a_guessers_failures(
        limited_app, partner_key):
    client = limited_app.state.test_client
    for _ in range(PER_MINUTE + 5):
        guess = client.get(NATIVE, headers=bearer(wrong_key(partner_key), GUESSER))
        assert guess.status_code in (401, 429), guess.text
    assert client.get(NATIVE, headers=bearer(wrong_key(partner_key), GUESSER)).status_code == 429
    assert client.get(NATIVE, headers=bearer(partner_key, ELSEWHERE)).status_code == 200
    assert client.get(STOPNCII,
                      headers=stopncii_headers(partner_key, ELSEWHERE)).status_code == 200
    # Behind the guesser's own address the key waits its turn: it cannot be told apart from a
    # guess without the lookup the cap exists to withhold.
    assert client.get(NATIVE, headers=bearer(partner_key, GUESSER)).status_code == 429


def test_successful_authentication_is_never_charged(limited_app, partner_key):
    client = limited_app.state.test_client
    for _ in range(3 * PER_MINUTE):
        assert client.get(NATIVE, headers=bearer(partner_key, GUESSER)).status_code == 200
    # The address still has its whole allowance of failures.
    statuses = [client.get(NATIVE, headers=bearer(wrong_key(partner_key), GUESSER)).status_code
                for _ in range(PER_MINUTE + 3)]
    assert statuses[:PER_MINUTE] == [401] * PER_MINUTE and statuses[-1] == 429


def test_a_refused_attempt_is_not_looked_up(limited_app, partner_key):
    client = limited_app.state.test_client
    for _ in range(PER_MINUTE):
        client.get(NATIVE, headers=bearer(wrong_key(partner_key), GUESSER))
    lookups: list[str] = []

    def on_statement(_conn, _cursor, statement, *_rest):
        if "partner_keys" in statement:
            lookups.append(statement)

    engine = limited_app.state.database.engine
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        refused = client.get(NATIVE, headers=bearer(wrong_key(partner_key), GUESSER))
        allowed = client.get(NATIVE, headers=bearer(wrong_key(partner_key), ELSEWHERE))
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert (refused.status_code, allowed.status_code) == (429, 401)
    assert len(lookups) == 1  # the other address's attempt only


def test_zero_turns_the_cap_off(http_client, make_partner):
    """The shared test settings (tests/conftest.py) turn it off: many failures, all 401."""
    key = make_partner("platformco")
    statuses = {http_client.get(NATIVE, headers={"Authorization": f"Bearer {wrong_key(key)}"})
                .status_code for _ in range(PER_MINUTE * 3)}
    assert statuses == {401}

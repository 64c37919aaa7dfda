"""The partner API: entitlements, keys, feedback, quarantine, match, export."""
from __future__ import annotations

import gzip
import json

import pytest
from typer.testing import CliRunner

from hashing.signals import pdq
from tests.hashes import BRIDGE, BRIDGE_CPP, C_PNG, MD5, Q0122, Q0291
from tests.helpers import bearer, cli_app, new_case, pull_all, replay, withdraw


def test_partners_see_only_the_pathways_they_are_entitled_to(client, make_partner):
    adult_key = make_partner("adultco", "adult")
    minor_key = make_partner("minorco", "under18_at_capture")
    both_key = make_partner("bothco")
    new_case(client, [BRIDGE], pathway="adult")
    new_case(client, [C_PNG], pathway="under18_at_capture")
    assert replay(pull_all(client, adult_key)[0]) == {("pdq", BRIDGE)}
    assert replay(pull_all(client, minor_key)[0]) == {("pdq", C_PNG)}
    assert replay(pull_all(client, both_key)[0]) == {("pdq", BRIDGE), ("pdq", C_PNG)}


def test_a_hash_in_both_pathways_reaches_a_both_pathway_partner_once(client, make_partner):
    both_key = make_partner("bothco")
    adult_case = new_case(client, [BRIDGE], pathway="adult")
    minor_case = new_case(client, [BRIDGE], pathway="under18_at_capture")
    entries, cursor = pull_all(client, both_key)
    assert [(e["op"], e["value"]) for e in entries] == [("add", BRIDGE)]
    withdraw(client, adult_case)  # still held under the other pathway: nothing to tell
    more, cursor = pull_all(client, both_key, cursor)
    assert more == []
    withdraw(client, minor_case)
    more, _ = pull_all(client, both_key, cursor)
    assert [(e["op"], e["value"]) for e in more] == [("remove", BRIDGE)]


def test_pull_pages_follow_the_cursor_without_gaps_or_repeats(client, make_partner):
    key = make_partner("pager")
    for value in (BRIDGE, C_PNG, Q0122, Q0291):
        new_case(client, [value])
    entries, cursor = pull_all(client, key, limit=1)
    assert [e["seq"] for e in entries] == sorted({e["seq"] for e in entries})
    assert len(entries) == 4 and entries[0]["quality"] == 100
    again = client.get("/v1/partner/hashes", params={"cursor": cursor}, headers=bearer(key)).json()
    assert again["entries"] == [] and again["next_cursor"] == cursor and again["has_more"] is False
    assert again["tree_size"] == 4  # every entry up to the cursor is in the transparency log


def test_withdrawal_reaches_the_partner_as_a_remove(client, make_partner):
    key = make_partner("adultco", "adult")
    case = new_case(client, [BRIDGE])
    _, cursor = pull_all(client, key)
    withdraw(client, case)
    entries, _ = pull_all(client, key, cursor)
    assert [(e["op"], e["value"], e["pathway"]) for e in entries] == [("remove", BRIDGE, "adult")]


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", "9" * 40])
def test_a_malformed_cursor_is_a_400(client, make_partner, cursor):
    response = client.get("/v1/partner/hashes", params={"cursor": cursor},
                          headers=bearer(make_partner("p")))
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] in ("invalid_cursor", "invalid_request")


def test_limit_accepts_ten_thousand_and_refuses_more(client, make_partner):
    key = make_partner("p")
    assert client.get("/v1/partner/hashes", params={"limit": 10_000}, headers=bearer(key)).status_code == 200
    assert client.get("/v1/partner/hashes", params={"limit": 10_001}, headers=bearer(key)).status_code == 422


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-key"},
                                     {"Authorization": "Bearer hgp_1_wrongsecret"},
                                     {"Authorization": "Basic abc"}])
def test_requests_without_a_valid_key_get_401(client, make_partner, headers):
    make_partner("p")
    response = client.get("/v1/partner/hashes", headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_partner_key"


def test_a_revoked_key_fails_on_its_next_request(client, app, make_partner, settings):
    key = make_partner("leaky", "adult")
    assert client.get("/v1/partner/hashes", headers=bearer(key)).status_code == 200
    result = CliRunner().invoke(cli_app(), ["partners", "keys", "revoke", "leaky", "--all",
                                         "--database-url", settings.database_url],
                                env={"HASHGUARD_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0, result.output
    assert client.get("/v1/partner/hashes", headers=bearer(key)).status_code == 401


def test_partner_cli_creates_keys_that_work(client, settings):
    env = {"HASHGUARD_DATA_DIR": str(settings.data_dir)}
    url = ["--database-url", settings.database_url]
    runner = CliRunner()
    added = runner.invoke(cli_app(), ["partners", "add", "cliplat", "--pathways", "adult"] + url, env=env)
    assert added.exit_code == 0, added.output
    created = runner.invoke(cli_app(), ["partners", "keys", "create", "cliplat"] + url, env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("hgp_") and len(key) > 40
    assert client.get("/v1/partner/hashes", headers=bearer(key)).status_code == 200
    listed = runner.invoke(cli_app(), ["partners", "list"] + url, env=env)
    assert "cliplat" in listed.stdout and "active keys: 1" in listed.stdout
    bad = runner.invoke(cli_app(), ["partners", "add", "x", "--pathways", "teen"] + url, env=env)
    assert bad.exit_code == 1


def test_feedback_flows_into_case_status_as_counts(client, make_partner):
    key_a, key_b = make_partner("zebracorp", "adult"), make_partner("yakplatform", "adult")
    case = new_case(client, [BRIDGE, C_PNG])
    _, cursor = pull_all(client, key_a)
    pull_all(client, key_a, cursor)  # the second pull acknowledges the first page
    for key in (key_a, key_b):
        response = client.post("/v1/partner/feedback", headers=bearer(key), json={"feedback": [
            {"signal_type": "pdq", "value": BRIDGE, "action": "removed", "tags": ["ncii"]}]})
        assert response.status_code == 200 and response.json()["accepted"] == 1
    # Idempotent: the same report again does not count twice.
    client.post("/v1/partner/feedback", headers=bearer(key_a), json={"feedback": [
        {"signal_type": "pdq", "value": BRIDGE, "action": "removed"}]})
    status = client.get(f"/v1/cases/{case['case_ref']}", headers=bearer(case["token"])).json()
    reports = {h["value"]: h["reports"] for h in status["hashes"]}
    assert reports[BRIDGE]["removed"] == 2 and reports[BRIDGE]["pulled"] == 1
    assert reports[C_PNG]["removed"] == 0 and reports[C_PNG]["pulled"] == 1
    assert "zebracorp" not in json.dumps(status) and "yakplatform" not in json.dumps(status)


def test_feedback_on_a_hash_the_partner_never_received_is_rejected(client, make_partner):
    adult_key = make_partner("adultco", "adult")
    new_case(client, [C_PNG], pathway="under18_at_capture")
    response = client.post("/v1/partner/feedback", headers=bearer(adult_key), json={"feedback": [
        {"signal_type": "pdq", "value": C_PNG, "action": "matched"}]})
    assert response.status_code == 200
    assert response.json()["accepted"] == 0 and response.json()["rejected"][0]["code"] == "unknown_hash"


def test_disputed_hash_is_quarantined_then_reviewed(client, make_partner, settings):
    keys = [make_partner(f"p{i}", "adult") for i in range(settings.dispute_quarantine_threshold)]
    case = new_case(client, [BRIDGE, C_PNG])
    _, cursor = pull_all(client, keys[0])
    for key in keys:
        client.post("/v1/partner/feedback", headers=bearer(key), json={"feedback": [
            {"signal_type": "pdq", "value": BRIDGE, "action": "not_violating"}]})
    entries, cursor = pull_all(client, keys[0], cursor)
    assert [(e["op"], e["value"]) for e in entries] == [("remove", BRIDGE)]
    # A new case with the same hash does not bring it back while it is under review.
    new_case(client, [BRIDGE])
    assert pull_all(client, keys[0], cursor)[0] == []
    env = {"HASHGUARD_DATA_DIR": str(settings.data_dir)}
    url = ["--database-url", settings.database_url]
    listed = CliRunner().invoke(cli_app(), ["review", "list"] + url, env=env)
    hash_id = listed.stdout.split("\t")[0]
    assert BRIDGE in listed.stdout and f"disputes: {len(keys)}" in listed.stdout
    restored = CliRunner().invoke(cli_app(), ["review", "restore", hash_id] + url, env=env)
    assert restored.exit_code == 0, restored.output
    entries, _ = pull_all(client, keys[0], cursor)
    assert [(e["op"], e["value"]) for e in entries] == [("add", BRIDGE)]
    status = client.get(f"/v1/cases/{case['case_ref']}", headers=bearer(case["token"])).json()
    assert {h["value"]: h["reports"]["not_violating"] for h in status["hashes"]}[BRIDGE] == len(keys)


def test_match_finds_near_pdq_and_exact_md5_within_entitlement(client, make_partner):
    adult_key, minor_key = make_partner("a", "adult"), make_partner("m", "under18_at_capture")
    new_case(client, [BRIDGE])
    client.post("/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "video_md5", "value": MD5}]})
    queries = {"hashes": [{"signal_type": "pdq", "value": BRIDGE_CPP},
                          {"signal_type": "pdq", "value": C_PNG},
                          {"signal_type": "video_md5", "value": MD5},
                          {"signal_type": "pdq", "value": "zz"}]}
    results = client.post("/v1/partner/match", headers=bearer(adult_key), json=queries).json()["results"]
    # The authors' C++ reference hash of the same photo, a few bits from ours.
    assert results[0]["matches"] == [{"signal_type": "pdq", "value": BRIDGE,
                                      "distance": pdq.distance(BRIDGE, BRIDGE_CPP),
                                      "pathways": ["adult"]}]
    assert results[1]["matches"] == []
    assert results[2]["matches"][0]["value"] == MD5
    assert results[3]["error"]["code"] == "pdq_bad_format"
    minor = client.post("/v1/partner/match", headers=bearer(minor_key), json=queries).json()
    assert all(r["matches"] == [] for r in minor["results"])


def test_match_forgets_withdrawn_hashes(client, make_partner):
    key = make_partner("a", "adult")
    case = new_case(client, [BRIDGE])
    query = {"hashes": [{"signal_type": "pdq", "value": BRIDGE}]}
    assert client.post("/v1/partner/match", headers=bearer(key), json=query).json()["results"][0]["matches"]
    withdraw(client, case)
    assert client.post("/v1/partner/match", headers=bearer(key), json=query).json()["results"][0]["matches"] == []


def test_export_streams_the_same_entries_as_paging(client, make_partner):
    key = make_partner("bulk")
    for value in (BRIDGE, C_PNG, Q0122):
        new_case(client, [value])
    paged, cursor = pull_all(client, key)
    plain = client.get("/v1/partner/hashes/export", headers=bearer(key))
    assert plain.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in plain.text.splitlines()]
    assert lines[:-1] == paged and lines[-1] == {"next_cursor": cursor, "log_epoch": 1}
    zipped = client.get("/v1/partner/hashes/export", params={"gzip": "true"}, headers=bearer(key))
    # httpx decodes Content-Encoding: gzip itself; check the header and the content.
    assert zipped.headers["content-encoding"] == "gzip"
    assert [json.loads(line) for line in zipped.text.splitlines()][:-1] == paged


def test_gzip_export_is_real_gzip(live_server, make_partner):
    import urllib.request

    key = make_partner("bulk")
    request = urllib.request.Request(live_server + "/v1/partner/hashes/export?gzip=true",
                                     headers=bearer(key))
    with urllib.request.urlopen(request) as response:
        raw = response.read()
    assert json.loads(gzip.decompress(raw).splitlines()[-1]) == {"next_cursor": "0", "log_epoch": 1}


def test_partner_endpoints_refuse_media_bodies(client, make_partner):
    key = make_partner("p")
    for path in ("/v1/partner/feedback", "/v1/partner/match", "/stopncii/v1/SubmitFeedback"):
        response = client.post(path, content=b"\xff\xd8\xff\xe0" + bytes(1000),
                               headers={**bearer(key), "Content-Type": "image/jpeg"})
        assert response.status_code == 415


def test_operator_denylist_keeps_a_benign_hash_out_even_when_submitted(client, make_partner, settings):
    key = make_partner("p", "adult")
    env = {"HASHGUARD_DATA_DIR": str(settings.data_dir)}
    url = ["--database-url", settings.database_url]
    new_case(client, [C_PNG])
    _, cursor = pull_all(client, key)
    denied = CliRunner().invoke(cli_app(), ["review", "deny", "pdq", C_PNG] + url, env=env)
    assert denied.exit_code == 0, denied.output
    entries, cursor = pull_all(client, key, cursor)
    assert [(e["op"], e["value"]) for e in entries] == [("remove", C_PNG)]
    CliRunner().invoke(cli_app(), ["review", "deny", "pdq", Q0291] + url, env=env)
    new_case(client, [Q0291, BRIDGE])  # a benign value never reaches partners
    entries, _ = pull_all(client, key, cursor)
    assert [(e["op"], e["value"]) for e in entries] == [("add", BRIDGE)]
    bad = CliRunner().invoke(cli_app(), ["review", "deny", "pdq", "zz"] + url, env=env)
    assert bad.exit_code == 1

"""The transparency log as a partner meets it, on PostgreSQL and SQLite: signed heads of each
pathway's tree over what was submitted and withdrawn, proofs that verify, entries of the
partner's own trees only, the `hashguard transparency verify` verb over HTTP, and a row altered in
the database caught by it. (tests/test_transparency_isolation.py: what one pathway's partner
cannot learn of the other's.)"""
from __future__ import annotations

import hashlib

from sqlalchemy import text
from typer.testing import CliRunner

from api.app import create_app
from partner_tools.transparency import verify_tree_head
from partners import transparency
from store import merkle
from tests.helpers import bearer, new_case, pull_all, withdraw
from txlog.entry import entry_leaf_hash
from txlog.head import SignedTreeHead, b64decode
from txlog.proof import verify_consistency, verify_inclusion


def pdq(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()  # a valid, non-degenerate PDQ value


def catch_up(app) -> dict[str, int]:
    return app.state.transparency.catch_up()


def head(client, key, pathway=None) -> SignedTreeHead:
    params = {"pathway": pathway} if pathway else {}
    response = client.get("/v1/transparency/head", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    return SignedTreeHead.from_json(response.json())


def public_key(client) -> bytes:
    return b64decode(client.get("/.well-known/hashguard-transparency-key").json()["public_key"])


def test_signed_head_and_proofs_cover_every_submitted_and_withdrawn_entry(
        client, app, make_partner):
    key = make_partner("both")
    cases = [new_case(client, [pdq(3 * i + 1), pdq(3 * i + 2)]) for i in range(5)]
    new_case(client, [pdq(100)], pathway="under18_at_capture")
    withdraw(client, cases[1])
    assert catch_up(app) == {"adult": 12, "under18_at_capture": 1}
    signed = head(client, key, "adult")
    verify_tree_head(signed, public_key(client), "adult")
    assert signed.tree_size == 12 and signed.pathway == "adult"
    for index in range(12):
        proof = client.get("/v1/transparency/proof/inclusion", headers=bearer(key),
                           params={"index": index, "tree_size": 12, "pathway": "adult"}).json()
        verify_inclusion(index, 12, b64decode(proof["leaf_hash"]),
                         [b64decode(h) for h in proof["audit_path"]], signed.root_hash)
    new_case(client, [pdq(200)])
    catch_up(app)
    later = head(client, key, "adult")
    assert later.tree_size == 13
    proof = client.get("/v1/transparency/proof/consistency", headers=bearer(key),
                       params={"first": 12, "second": 13, "pathway": "adult"}).json()["proof"]
    verify_consistency(12, 13, signed.root_hash, later.root_hash, [b64decode(h) for h in proof])


def test_proof_requests_beyond_the_log_are_refused(client, app, make_partner):
    key = make_partner("adult", "adult")
    new_case(client, [pdq(1)])
    new_case(client, [pdq(2)], pathway="under18_at_capture")  # not in the adult tree
    catch_up(app)
    for path, params in [("inclusion", {"index": 1, "tree_size": 1}),
                         ("inclusion", {"index": 0, "tree_size": 2}),
                         ("consistency", {"first": 1, "second": 2}),
                         ("consistency", {"first": 2, "second": 1})]:
        response = client.get(f"/v1/transparency/proof/{path}", params=params,
                              headers=bearer(key))
        assert response.status_code == 400, (path, params)
        assert response.json()["error"]["code"] in ("index_out_of_range", "tree_size_too_large",
                                                    "invalid_range")


def test_entries_need_a_partner_key_and_come_in_full_from_the_partners_tree(
        client, app, make_partner):
    new_case(client, [pdq(1)])
    new_case(client, [pdq(2)], pathway="under18_at_capture")
    catch_up(app)
    assert client.get("/v1/transparency/entries", params={"start": 0, "end": 1}).status_code == 401
    key = make_partner("adultonly", "adult")
    body = client.get("/v1/transparency/entries", params={"start": 0, "end": 1},
                      headers=bearer(key)).json()
    (adult,) = body["entries"]
    assert body["pathway"] == "adult" and body["pathways"] == ["adult"]
    assert adult["value"] == pdq(1) and "commitment" not in adult
    assert (adult["index"], adult["seq"], adult["pathway_seq"]) == (0, 1, 1)
    assert entry_leaf_hash(adult) == b64decode(adult["leaf_hash"])
    both = make_partner("both")
    body = client.get("/v1/transparency/entries", headers=bearer(both),
                      params={"start": 0, "end": 1, "pathway": "under18_at_capture"}).json()
    (minor,) = body["entries"]
    assert minor["value"] == pdq(2) and minor["pathway_seq"] == 1
    assert minor["seq"] == 2  # the global position: what a both-pathways partner's pull says
    assert entry_leaf_hash(minor) == b64decode(minor["leaf_hash"])


def test_tree_size_for_a_pull_cursor(client, app, make_partner):
    key = make_partner("p", "adult")
    for i in range(4):
        new_case(client, [pdq(i + 1)])
        new_case(client, [pdq(100 + i)], pathway="under18_at_capture")
    entries, _ = pull_all(client, key)
    with app.state.database.read() as session:  # the builder has not run yet
        assert merkle.tree_size_for(session, "adult", entries[-1]["seq"] * 2) == 4
    catch_up(app)
    page = client.get("/v1/partner/hashes", headers=bearer(key), params={"limit": 2}).json()
    assert (page["tree_size"], page["tree_sizes"]) == (2, {"adult": 2})
    with app.state.database.read() as session:
        assert transparency.tree_sizes_for(session, ["adult"], 8) == {"adult": 4}
        assert transparency.tree_sizes_for(session, ["adult"], 3) == {"adult": 2}
        assert transparency.tree_sizes_for(session, ["adult", "under18_at_capture"], 3) == {
            "adult": 2, "under18_at_capture": 1}
        assert transparency.tree_sizes_for(session, ["adult"], 0) == {"adult": 0}


def test_the_signing_key_is_kept_in_the_database_and_printed_by_the_cli(client, settings):
    # Kept sealed in the database (issue 23: every host signs with it), no per-host key file.
    assert not (settings.data_dir / transparency.KEY_FILE).exists()
    from api.cli import register
    from hashing.cli import app as cli_app

    register(cli_app)
    result = CliRunner().invoke(cli_app, ["transparency", "public-key",
                                          "--data-dir", str(settings.data_dir),
                                          "--database-url", settings.database_url])
    assert result.exit_code == 0, result.output
    assert b64decode(result.stdout.strip().splitlines()[-1]) == public_key(client)


def run_verify(server: str, state_file, key: str | None = None, *extra: str):
    from hashing.cli import app as cli_app
    from partner_tools.cli import register

    register(cli_app)  # what the `partner` entry point does in an install with the partner extra
    args = ["transparency", "verify", "--server", server, "--state", str(state_file), "--json"]
    if key:
        args += ["--key", key]
    return CliRunner().invoke(cli_app, args + list(extra))


def test_verify_verb_over_http_passes_then_catches_a_row_altered_in_the_database(
        app, live_server, make_partner, tmp_path):
    import httpx

    key = make_partner("p", "adult")
    state_file = tmp_path / "verifier.json"
    with httpx.Client(base_url=live_server) as http:
        for round_ in range(3):
            for i in range(5):
                new_case(http, [pdq(10 * round_ + i + 1)])
            new_case(http, [pdq(1000 + round_)], pathway="under18_at_capture")
            catch_up(app)
            result = run_verify(live_server, state_file, key)
            assert result.exit_code == 0, result.output
        no_key = run_verify(live_server, tmp_path / "auditor.json")  # heads are partners' now
        assert no_key.exit_code == 1 and "--key" in no_key.output
    with app.state.database.transaction() as session:
        session.execute(text("UPDATE change_log SET value = :v WHERE value = :old"),
                        {"v": pdq(999_999), "old": pdq(3)})
    assert run_verify(live_server, state_file, key).exit_code == 0  # an old entry: incremental
    result = run_verify(live_server, state_file, key, "--full")
    assert result.exit_code == 1
    assert "FAILED" in result.output and "altered" in result.output


def test_the_log_takes_its_settings_from_settings_under_the_old_variable_names(
        settings, monkeypatch):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from api.settings import Settings
    from store.secrets import encode_secret

    seed = bytes(range(32))
    monkeypatch.setenv("HASHGUARD_TRANSPARENCY_KEY", encode_secret(seed))
    monkeypatch.setenv("HASHGUARD_TREE_HEAD_INTERVAL", "0.5")
    monkeypatch.setenv("HASHGUARD_TREE_HEAD_MAX_AGE", "60")
    monkeypatch.setenv("HASHGUARD_TREE_BUILDER", "0")
    configured = Settings(database_url=settings.database_url, data_dir=settings.data_dir)
    app = create_app(configured, run_migrations=False)
    try:
        builder = app.state.transparency
        assert (builder.interval, builder.max_age, builder.enabled) == (0.5, 60.0, False)
        assert transparency.public_key_raw(builder.key) == transparency.public_key_raw(
            Ed25519PrivateKey.from_private_bytes(seed))
        assert not (settings.data_dir / transparency.KEY_FILE).exists()  # the seed, not a file
    finally:
        app.state.database.dispose()

"""Issue 21, finding 2 (transparency log): a partner learns nothing of a pathway it is not entitled
to through the log, order and timing included. The red team's attack: an adult-only partner's
`/v1/transparency/entries` showed its own `remove` followed by an under-18 commitment at the next
position, so it learnt that the value was in the under-18 list too, and when.

Each pathway now has a tree of its own, served only to its partners. These tests perform the
attack and its variants over HTTP (on PostgreSQL and SQLite), and check that the partners of each
pathway still verify their trees, also with `hashguard transparency verify`.
"""
from __future__ import annotations

import hashlib
import json

import httpx
from typer.testing import CliRunner

from tests.helpers import bearer, new_case, withdraw

ADULT, MINOR = "adult", "under18_at_capture"
TRANSPARENCY = "/v1/transparency"


def pdq(n: int) -> str:
    return hashlib.sha256(f"isolation {n}".encode()).hexdigest()


def get(http_client, path: str, key: str | None = None, **params):
    return http_client.get(TRANSPARENCY + path, params=params, headers=bearer(key) if key else {})


def interleaved(http_client, app) -> None:
    """Adult and under-18 entries interleaved, one value in both pathways and withdrawn from
    adult only: the red team's sequence (an adult remove, then an under-18 entry)."""
    both = new_case(http_client, [pdq(1)])                # adult add    (adult 1)
    new_case(http_client, [pdq(2)], pathway=MINOR)        # under-18 add
    new_case(http_client, [pdq(3)])                       # adult add    (adult 2)
    new_case(http_client, [pdq(1)], pathway=MINOR)        # the same value, under-18 add
    withdraw(http_client, both)                           # adult remove (adult 3)
    new_case(http_client, [pdq(4)], pathway=MINOR)        # under-18 add, right after the remove
    app.state.transparency.catch_up()


def test_an_adult_partners_entries_are_its_own_with_consecutive_indexes(http_client, app,
                                                                        make_partner):
    key = make_partner("adult-only", ADULT)
    interleaved(http_client, app)
    head = get(http_client, "/head", key).json()
    assert head["tree_size"] == 3  # its own three entries, nothing of the under-18 ones
    response = get(http_client, "/entries", key, start=0, end=head["tree_size"])
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    assert [e["index"] for e in entries] == [0, 1, 2]
    assert [e["pathway_seq"] for e in entries] == [1, 2, 3]
    assert [e["seq"] for e in entries] == [1, 2, 3]  # its pull's numbering, not the global one
    assert [(e["op"], e["value"]) for e in entries] == [
        ("add", pdq(1)), ("add", pdq(3)), ("remove", pdq(1))]
    assert all(e["pathway"] == ADULT and "commitment" not in e for e in entries)
    assert MINOR not in response.text
    # Asking past its tree's end tells no more either.
    beyond = get(http_client, "/entries", key, start=0, end=6)
    assert beyond.status_code == 400 and beyond.json()["error"]["code"] == "tree_size_too_large"


def test_the_adult_tree_does_not_move_with_under18_activity(http_client, app, make_partner):
    """The head and the pull's tree size are an adult partner's clock of the log: under-18
    submissions and withdrawals must not tick it."""
    key = make_partner("adult-only", ADULT)
    interleaved(http_client, app)
    before = get(http_client, "/head", key).json()
    page_before = http_client.get("/v1/partner/hashes", headers=bearer(key)).json()
    cases = [new_case(http_client, [pdq(100 + n)], pathway=MINOR) for n in range(3)]
    withdraw(http_client, cases[0])
    app.state.transparency.catch_up()
    assert get(http_client, "/head", key).json() == before  # the same signed head, byte for byte
    page_after = http_client.get("/v1/partner/hashes", headers=bearer(key)).json()
    assert page_after["tree_size"] == page_before["tree_size"] == before["tree_size"] == 3
    assert page_after["tree_sizes"] == {ADULT: 3}


def test_an_adult_partner_is_refused_the_under18_tree_and_the_tree_is_not_public(
        http_client, app, make_partner):
    key = make_partner("adult-only", ADULT)
    interleaved(http_client, app)
    for path, params in [("/head", {}), ("/entries", {"start": 0, "end": 1}),
                         ("/proof/inclusion", {"index": 0, "tree_size": 1}),
                         ("/proof/consistency", {"first": 1, "second": 2})]:
        refused = get(http_client, path, key, pathway=MINOR, **params)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "pathway_not_entitled"
        assert "tree_size" not in refused.text and "root_hash" not in refused.text
        anonymous = get(http_client, path, pathway=MINOR, **params)
        assert anonymous.status_code == 401, (path, anonymous.text)
        assert get(http_client, path, **params).status_code == 401  # the default tree neither
    unknown = get(http_client, "/head", key, pathway="elsewhere")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_pathway"
    assert get(http_client, "/trees", key).json() == {"pathways": [ADULT]}
    public = http_client.get("/.well-known/hashguard-transparency-key")  # the key stays public
    assert public.status_code == 200 and public.json()["public_key"]


def test_a_both_pathways_partner_names_the_tree_and_heads_bind_their_pathway(
        http_client, app, make_partner):
    from partner_tools.transparency import verify_tree_head
    from txlog.errors import VerificationError
    from txlog.head import SignedTreeHead, b64decode

    key = make_partner("both")
    interleaved(http_client, app)
    missing = get(http_client, "/head", key)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "pathway_required"
    assert get(http_client, "/trees", key).json() == {"pathways": [ADULT, MINOR]}
    published = http_client.get("/.well-known/hashguard-transparency-key").json()
    raw_key = b64decode(published["public_key"])
    heads = {p: get(http_client, "/head", key, pathway=p).json() for p in (ADULT, MINOR)}
    assert (heads[ADULT]["tree_size"], heads[MINOR]["tree_size"]) == (3, 3)
    for pathway, body in heads.items():
        verify_tree_head(SignedTreeHead.from_json(body), raw_key, pathway)
        other = MINOR if pathway == ADULT else ADULT
        relabelled = SignedTreeHead.from_json(dict(body, pathway=other))
        try:
            verify_tree_head(relabelled, raw_key, other)
        except VerificationError as refused:
            assert "bad signature" in str(refused)
        else:
            raise AssertionError(f"a head of the {pathway} tree verified as the {other} tree's")
    page = http_client.get("/v1/partner/hashes", headers=bearer(key)).json()
    assert page["tree_sizes"] == {ADULT: 3, MINOR: 3} and page["tree_size"] == 6


def verifier_over(http_client, key: str):
    from partner_tools.cli import transparency_getter

    http_client.headers["Authorization"] = f"Bearer {key}"
    return transparency_getter(http_client)


def test_an_under18_partner_verifies_its_tree_across_adds_and_removes(http_client, app,
                                                                      make_partner):
    from partner_tools.transparency import Verifier, VerifierState
    from txlog.head import b64decode
    from txlog.proof import verify_inclusion

    key = make_partner("minors", MINOR)
    state = VerifierState()
    expected = 0
    for round_ in range(3):
        cases = [new_case(http_client, [pdq(10 * round_ + n)], pathway=MINOR) for n in range(3)]
        new_case(http_client, [pdq(500 + round_)])  # adult entries between: not in this tree
        withdraw(http_client, cases[1])
        app.state.transparency.catch_up()
        expected += 4
        outcome = Verifier(verifier_over(http_client, key), state, check_entries=True).run()
        (tree,) = outcome.trees
        assert (tree.pathway, tree.head.tree_size, tree.entries_checked) == (MINOR, expected, 4)
    for index in range(expected):
        proof = get(http_client, "/proof/inclusion", key, index=index, tree_size=expected).json()
        verify_inclusion(index, expected, b64decode(proof["leaf_hash"]),
                         [b64decode(h) for h in proof["audit_path"]], tree.head.root_hash)


def test_a_both_pathways_partner_verifies_both_trees(http_client, app, make_partner):
    from partner_tools.transparency import Verifier, VerifierState

    key = make_partner("both")
    interleaved(http_client, app)
    state = VerifierState()
    outcome = Verifier(verifier_over(http_client, key), state, check_entries=True).run()
    assert {t.pathway: (t.head.tree_size, t.visible_entries) for t in outcome.trees} == {
        ADULT: (3, 3), MINOR: (3, 3)}
    new_case(http_client, [pdq(77)], pathway=MINOR)
    app.state.transparency.catch_up()
    again = Verifier(verifier_over(http_client, key), state, check_entries=True).run()
    assert {t.pathway: (t.previous_size, t.entries_checked) for t in again.trees} == {
        ADULT: (3, 0), MINOR: (3, 1)}


def run_verify(server: str, state_file, key: str, *extra: str):
    from hashing.cli import app as cli_app
    from partner_tools.cli import register

    register(cli_app)  # what the `partner` entry point does in an install with the partner extra
    return CliRunner().invoke(cli_app, ["transparency", "verify", "--server", server, "--state",
                                        str(state_file), "--key", key, "--json", *extra])


def test_the_verify_verb_checks_each_partners_own_trees(app, live_server, make_partner, tmp_path):
    adult, minors, both = (make_partner("a", ADULT), make_partner("m", MINOR),
                           make_partner("b"))
    with httpx.Client(base_url=live_server) as http:
        interleaved(http, app)
    for key, sizes in [(adult, {ADULT: 3}), (minors, {MINOR: 3}), (both, {ADULT: 3, MINOR: 3})]:
        state_file = tmp_path / f"{key[:6]}.json"
        result = run_verify(live_server, state_file, key)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert {p: t["tree_size"] for p, t in answer["trees"].items()} == sizes
        assert set(json.loads(state_file.read_text())["trees"]) == set(sizes)
    refused = run_verify(live_server, tmp_path / "a-minor.json", adult, "--pathway", MINOR)
    assert refused.exit_code == 1 and "pathway_not_entitled" in refused.output
    chosen = run_verify(live_server, tmp_path / "b-minor.json", both, "--pathway", MINOR)
    assert chosen.exit_code == 0 and set(json.loads(chosen.stdout)["trees"]) == {MINOR}
    assert json.loads(chosen.stdout)["tree_size"] == 3  # one tree: its fields at the top as before

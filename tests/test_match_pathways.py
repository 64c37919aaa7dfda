"""Match answers name the pathways a matched hash is shared under (issue 19): only the partner's
own, and both when the hash is shared under both. Every signal type's index answers them."""
from __future__ import annotations

from tests.hashes import BRIDGE, BRIDGE_CPP, C_PNG, MD5
from tests.helpers import bearer, new_case, wire, withdraw

ADULT, MINOR = "adult", "under18_at_capture"
TMK_SHARED, TMK_SAME_CLIP = "chair-19-sd-bar", "chair-22-sd-grey-bar"


def _submit(client, pathway, hashes):
    response = client.post("/v1/cases", json={"pathway": pathway, "hashes": hashes})
    assert response.status_code == 201, response.text
    return response.json()


def _matches(client, key, queries) -> list[list[tuple[str, list[str]]]]:
    """Per query: (value or value_sha256, pathways) of each match."""
    response = client.post("/v1/partner/match", headers=bearer(key), json={"hashes": queries})
    assert response.status_code == 200, response.text
    return [[(m.get("value") or m["value_sha256"], m["pathways"]) for m in r["matches"]]
            for r in response.json()["results"]]


def test_matches_carry_the_partners_pathways_they_are_shared_under(client, make_partner):
    adult_key = make_partner("a", ADULT)
    minor_key = make_partner("m", MINOR)
    both_key = make_partner("b", f"{ADULT},{MINOR}")
    new_case(client, [BRIDGE], pathway=ADULT)
    new_case(client, [BRIDGE], pathway=MINOR)  # the same photo, shared under both
    new_case(client, [C_PNG], pathway=ADULT)
    _submit(client, MINOR, [{"signal_type": "video_md5", "value": MD5}])
    queries = [{"signal_type": "pdq", "value": BRIDGE_CPP},  # near BRIDGE
               {"signal_type": "pdq", "value": C_PNG},
               {"signal_type": "video_md5", "value": MD5}]

    assert _matches(client, adult_key, queries) == [
        [(BRIDGE, [ADULT])], [(C_PNG, [ADULT])], []]
    assert _matches(client, minor_key, queries) == [
        [(BRIDGE, [MINOR])], [], [(MD5, [MINOR])]]
    assert _matches(client, both_key, queries) == [
        [(BRIDGE, [ADULT, MINOR])], [(C_PNG, [ADULT])], [(MD5, [MINOR])]]


def test_a_pathway_withdrawn_leaves_the_match_answer(client, make_partner):
    both_key = make_partner("b", f"{ADULT},{MINOR}")
    adult_case = new_case(client, [BRIDGE], pathway=ADULT)
    new_case(client, [BRIDGE], pathway=MINOR)
    query = [{"signal_type": "pdq", "value": BRIDGE}]
    assert _matches(client, both_key, query) == [[(BRIDGE, [ADULT, MINOR])]]
    withdraw(client, adult_case)
    assert _matches(client, both_key, query) == [[(BRIDGE, [MINOR])]]


def test_tmk_matches_carry_their_pathways(client, make_partner):
    adult_key = make_partner("a", ADULT)
    both_key = make_partner("b", f"{ADULT},{MINOR}")
    _submit(client, MINOR, [{"signal_type": "video_tmk_pdqf", "value": wire(TMK_SHARED)}])
    query = [{"signal_type": "video_tmk_pdqf", "value": wire(TMK_SAME_CLIP)}]
    assert _matches(client, adult_key, query) == [[]]
    [[(_, pathways)]] = _matches(client, both_key, query)
    assert pathways == [MINOR]

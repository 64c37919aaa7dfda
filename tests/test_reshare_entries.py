"""`entries=per_pathway` (issue 19): a partner entitled to both pathways learns when a value it
holds gains or loses a pathway; the default stays one add and one remove per value, and a partner
entitled to one pathway sees the same in both modes (and never `also_shared`)."""
from __future__ import annotations

import json

from tests.hashes import BRIDGE
from tests.helpers import bearer, new_case, pull_all, replay, withdraw

ADULT, MINOR = "adult", "under18_at_capture"


def _pull(client, key, entries=None, cursor=""):
    """Every entry after `cursor` in the given mode (None: the default, no parameter sent)."""
    found = []
    while True:
        params = {"cursor": cursor} | ({"entries": entries} if entries else {})
        response = client.get("/v1/partner/hashes", params=params, headers=bearer(key))
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["entries"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return found, cursor


def _shape(entries):
    return [(e["op"], e["pathway"], e.get("also_shared")) for e in entries]


def _shared_in_adult_then_minor_then_withdrawn_from_adult(client):
    adult_case = new_case(client, [BRIDGE], pathway=ADULT)
    minor_case = new_case(client, [BRIDGE], pathway=MINOR)
    withdraw(client, adult_case)
    return minor_case


def test_per_pathway_shows_a_value_gaining_and_losing_a_pathway(client, make_partner):
    both = make_partner("both", f"{ADULT},{MINOR}")
    minor_case = _shared_in_adult_then_minor_then_withdrawn_from_adult(client)
    entries, cursor = _pull(client, both, "per_pathway")
    assert _shape(entries) == [("add", ADULT, False), ("add", MINOR, True),
                               ("remove", ADULT, True)]
    assert {e["value"] for e in entries} == {BRIDGE}
    withdraw(client, minor_case)
    more, _ = _pull(client, both, "per_pathway", cursor)
    assert _shape(more) == [("remove", MINOR, False)]
    # Replayed per (pathway, value), what the partner holds is what is shared: nothing now.
    held = {}
    for entry in entries + more:
        held[(entry["pathway"], entry["value"])] = entry["op"] == "add"
    assert not any(held.values())


def test_the_default_is_still_one_add_and_one_remove_per_value(client, make_partner):
    both = make_partner("both", f"{ADULT},{MINOR}")
    minor_case = _shared_in_adult_then_minor_then_withdrawn_from_adult(client)
    withdraw(client, minor_case)
    default, _ = _pull(client, both)
    assert _shape(default) == [("add", ADULT, None), ("remove", MINOR, None)]
    assert replay(default) == set()
    assert _pull(client, both, "per_value")[0] == default


def test_a_partner_entitled_to_one_pathway_sees_the_same_in_both_modes(client, make_partner):
    adult = make_partner("adult", ADULT)
    minor = make_partner("minor", MINOR)
    _shared_in_adult_then_minor_then_withdrawn_from_adult(client)
    for key, expected in ((adult, [("add", ADULT, None), ("remove", ADULT, None)]),
                          (minor, [("add", MINOR, None)])):
        default, _ = _pull(client, key)
        assert _shape(default) == expected
        assert _pull(client, key, "per_pathway")[0] == default


def test_cursors_serve_both_modes(client, make_partner):
    both = make_partner("both", f"{ADULT},{MINOR}")
    new_case(client, [BRIDGE], pathway=ADULT)
    _, cursor = pull_all(client, both)  # the default mode, up to the first add
    new_case(client, [BRIDGE], pathway=MINOR)
    per_pathway, next_cursor = _pull(client, both, "per_pathway", cursor)
    assert _shape(per_pathway) == [("add", MINOR, True)]
    # Back in the default mode from the per_pathway cursor: nothing new, nothing repeated.
    assert _pull(client, both, None, next_cursor)[0] == []


def test_export_offers_the_same_modes(client, make_partner):
    both = make_partner("both", f"{ADULT},{MINOR}")
    _shared_in_adult_then_minor_then_withdrawn_from_adult(client)
    for mode in ("per_value", "per_pathway"):
        response = client.get("/v1/partner/hashes/export", params={"entries": mode},
                              headers=bearer(both))
        assert response.status_code == 200, response.text
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert len(lines) - 1 == {"per_value": 1, "per_pathway": 3}[mode]
        assert lines[:-1] == _pull(client, both, mode)[0]


def test_an_unknown_mode_is_refused(client, make_partner):
    both = make_partner("both", f"{ADULT},{MINOR}")
    for path in ("/v1/partner/hashes", "/v1/partner/hashes/export"):
        response = client.get(path, params={"entries": "per_case"}, headers=bearer(both))
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"

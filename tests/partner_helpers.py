"""Small helpers shared by the partner API tests."""
from __future__ import annotations


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def new_case(client, values, pathway="adult", quality=100):
    hashes = [{"signal_type": "pdq", "value": v, "quality": quality} for v in values]
    response = client.post("/v1/cases", json={"pathway": pathway, "hashes": hashes})
    assert response.status_code == 201, response.text
    return response.json()


def withdraw(client, case):
    response = client.post(f"/v1/cases/{case['case_ref']}/withdraw",
                           headers=bearer(case["token"]))
    assert response.status_code == 200, response.text


def pull_all(client, key, cursor="", limit=1000):
    """Every entry after `cursor`, following next_cursor; returns (entries, final cursor)."""
    entries = []
    while True:
        response = client.get("/v1/partner/hashes", params={"cursor": cursor, "limit": limit},
                              headers=bearer(key))
        assert response.status_code == 200, response.text
        page = response.json()
        entries += page["entries"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return entries, cursor


def replay(entries) -> set[tuple[str, str]]:
    """The set a partner holds after applying entries in order; fails on a redundant entry."""
    held: set[tuple[str, str]] = set()
    for entry in entries:
        key = (entry["signal_type"], entry["value"])
        if entry["op"] == "add":
            assert key not in held, f"second add without a remove: {entry}"
            held.add(key)
        else:
            assert key in held, f"remove of a hash never added: {entry}"
            held.discard(key)
    return held

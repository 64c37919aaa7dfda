"""A partner learns nothing about a pathway it is not entitled to (issue: hostile partners): not
the count of the other pathway's entries, nor their timing, through pull positions, StopNCII page
tokens or webhooks. Each test performs what a red team did with an adult-only key, over real HTTP
against the app under uvicorn (tests/conftest.py, served_over_http)."""
from __future__ import annotations

import json
import time

from tests.hashes import BRIDGE, C_PNG, Q0122, Q0291
from tests.helpers import Receiver, bearer, new_case, pull_all, register_webhook


def interleaved(http_client):
    """Adult, under-18, under-18, adult: an adult partner must see two entries, back to back."""
    new_case(http_client, [BRIDGE], pathway="adult")
    new_case(http_client, [C_PNG], pathway="under18_at_capture")
    new_case(http_client, [Q0122], pathway="under18_at_capture")
    new_case(http_client, [Q0291], pathway="adult")


def test_pull_positions_have_no_gaps_where_the_other_pathway_wrote(http_client, make_partner):
    adult = make_partner("adultonly", "adult")
    interleaved(http_client)
    entries, cursor = pull_all(http_client, adult)
    assert [(e["seq"], e["value"]) for e in entries] == [(1, BRIDGE), (2, Q0291)]
    # The cursor tells no more: the next page after it is exactly the next adult entry.
    new_case(http_client, [C_PNG, Q0122], pathway="adult")
    more, _ = pull_all(http_client, adult, cursor)
    assert [e["seq"] for e in more] == [3, 4]


def test_a_partner_entitled_to_both_still_reads_one_order(http_client, make_partner):
    both = make_partner("both", "adult,under18_at_capture")
    interleaved(http_client)
    entries, _ = pull_all(http_client, both)
    assert [e["value"] for e in entries] == [BRIDGE, C_PNG, Q0122, Q0291]
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)


def test_stopncii_page_tokens_count_only_what_the_partner_received(http_client, make_partner):
    adult = make_partner("adultonly", "adult")
    new_case(http_client, [BRIDGE], pathway="adult")
    first = http_client.get("/stopncii/v1/FetchHashes", headers=bearer(adult)).json()
    new_case(http_client, [C_PNG], pathway="under18_at_capture")
    new_case(http_client, [Q0122], pathway="under18_at_capture")
    new_case(http_client, [Q0291], pathway="adult")
    second = http_client.get("/stopncii/v1/FetchHashes", headers=bearer(adult),
                        params={"nextPageToken": first["nextPageToken"]}).json()
    assert second["count"] == 1
    # Tokens are opaque, but a partner will subtract them: the step must be what it received.
    step = int(second["nextPageToken"].lstrip("p")) - int(first["nextPageToken"].lstrip("p"))
    assert step == 1, "the page token counted the other pathway's entries"


def test_webhooks_count_only_the_partners_pathway(http_client, make_partner, settings):
    receiver = Receiver()
    make_partner("hooked", "adult")
    register_webhook(settings, "hooked", receiver.url)
    new_case(http_client, [BRIDGE], pathway="adult")
    new_case(http_client, [C_PNG], pathway="under18_at_capture")
    new_case(http_client, [Q0122], pathway="under18_at_capture")
    new_case(http_client, [Q0291], pathway="adult")
    # Wait for the delivery that announces the adult pathway's head, not for a number of
    # deliveries: the notifier coalesces, so the four cases may bring one delivery or several.
    def latest() -> int:
        return max((json.loads(body)["latest_seq"] for _, _, body in receiver.deliveries),
                   default=0)

    deadline = time.monotonic() + 10
    while latest() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # ten coalescing windows (partners/webhooks.py): any later delivery is in
    assert latest() == 2, "the webhook counted the other pathway's entries"


def test_a_cursor_past_the_head_is_refused_and_acknowledges_nothing(http_client, make_partner):
    adult = make_partner("adultonly", "adult")
    new_case(http_client, [BRIDGE])
    for cursor in ("999999999999999999", "p999999999999999999", "p2"):
        response = http_client.get("/v1/partner/hashes", headers=bearer(adult),
                                   params={"cursor": cursor})
        assert response.status_code == 400, (cursor, response.text)
    later = new_case(http_client, [C_PNG])
    status = http_client.get(f"/v1/cases/{later['case_ref']}",
                             headers=bearer(later["token"])).json()
    assert status["hashes"][0]["reports"]["pulled"] == 0


def test_a_numeric_cursor_cannot_probe_global_positions(http_client, make_partner):
    """Decimal cursors handed out before per-pathway positions keep working up to where they
    ended; past that they would reveal global positions, so they are refused."""
    adult = make_partner("adultonly", "adult")
    interleaved(http_client)
    assert http_client.get("/v1/partner/hashes", headers=bearer(adult),
                      params={"cursor": "3"}).status_code == 400

"""The StopNCII-compatible surface, driven by python-threatexchange's own StopNCII client (the
real PyPI package, unchanged) pointed at a live hashguard."""
from __future__ import annotations

import pytest

from tests.hashes import BRIDGE, C_PNG, MD5, Q0122
from tests.helpers import bearer, new_case, withdraw

stopncii = pytest.importorskip("threatexchange.exchanges.clients.stopncii.api")


def client_for(live_server, key):
    return stopncii.StopNCIIAPI(
        subscription_key=key, fetch_function_key=key,
        additional_function_keys={stopncii.StopNCIIEndpoint.SubmitFeedback: key},
        base_url_override=live_server + "/stopncii/v1")


def fetch_everything(api, start=stopncii.StopNCIIAPI.DEFAULT_START_TIME):
    """What the client's own paging gives, with its snapshot semantics (later records replace)."""
    records, checkpoint = {}, start
    for page in api.fetch_hashes_iter(start_timestamp=start):
        for record in page.hashRecords:
            records[(record.signalType.name, record.hashValue)] = record
        checkpoint = page.nextSetTimestamp
    return records, checkpoint


def test_pytx_client_fetches_every_hash_with_its_own_paging(live_server, client, make_partner):
    key = make_partner("pytxco")
    values = [BRIDGE, C_PNG, Q0122]
    for value in values:
        new_case(client, [value])
    client.post("/v1/cases", json={"pathway": "under18_at_capture",
                                   "hashes": [{"signal_type": "video_md5", "value": MD5}]})
    api = client_for(live_server, key)
    page = api.fetch_hashes(page_size=2)  # several pages: the client follows nextPageToken
    assert page.hasMoreRecords and page.count == 2
    records, checkpoint = fetch_everything(api)
    assert {k for k in records} == {("ImagePDQ", v) for v in values} | {("VideoMD5", MD5)}
    assert all(r.hashStatus == stopncii.StopNCIICaseStatus.Active for r in records.values())
    assert checkpoint >= stopncii.StopNCIIAPI.DEFAULT_START_TIME


def test_withdrawn_hash_comes_back_as_withdrawn_from_the_checkpoint(live_server, client, make_partner):
    key = make_partner("pytxco")
    case = new_case(client, [BRIDGE])
    api = client_for(live_server, key)
    _, checkpoint = fetch_everything(api)
    withdraw(client, case)
    records, _ = fetch_everything(api, start=checkpoint)
    assert records[("ImagePDQ", BRIDGE)].hashStatus == stopncii.StopNCIICaseStatus.Withdrawn


def test_pytx_feedback_shows_up_in_case_status(live_server, client, make_partner):
    key = make_partner("pytxco")
    case = new_case(client, [BRIDGE])
    api = client_for(live_server, key)
    api.submit_feedback(stopncii.StopNCIISignalType.ImagePDQ, BRIDGE,
                        stopncii.StopNCIICSPFeedbackValue.Blocked, {"ncii"})
    status = client.get(f"/v1/cases/{case['case_ref']}", headers=bearer(case["token"])).json()
    assert status["hashes"][0]["reports"]["removed"] == 1


def test_pathway_entitlement_holds_on_the_stopncii_surface(live_server, client, make_partner):
    key = make_partner("adultco", "adult")
    new_case(client, [BRIDGE], pathway="adult")
    new_case(client, [C_PNG], pathway="under18_at_capture")
    records, _ = fetch_everything(client_for(live_server, key))
    assert set(records) == {("ImagePDQ", BRIDGE)}


def test_wrong_or_mismatched_keys_are_refused(client, make_partner):
    key = make_partner("pytxco")
    assert client.get("/stopncii/v1/FetchHashes", headers={
        "Ocp-Apim-Subscription-Key": "nope", "x-functions-key": "nope"}).status_code == 401
    assert client.get("/stopncii/v1/FetchHashes", headers={
        "Ocp-Apim-Subscription-Key": key, "x-functions-key": "other"}).status_code == 401
    assert client.get("/stopncii/v1/FetchHashes", headers={
        "Ocp-Apim-Subscription-Key": key, "x-functions-key": key}).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_empty_page_never_checkpoints_past_an_entry_still_committing(client, app, make_partner):
    """The checkpoint of an empty page comes from the log, not the API host's clock: an entry
    that was being written while the page was read (its time taken before the commit, or by a
    database clock behind the API host's) is still fetched from that checkpoint.

    SQLite shows it without clock skew: an entry's time is taken when it is written, and a
    reader does not see it until the writer commits, a second later here."""
    import threading
    import time

    from hashing.signals import Signal
    from store import cases as store_cases

    key = make_partner("quietfeed")
    new_case(client, [BRIDGE])
    first = client.get("/stopncii/v1/FetchHashes", headers=bearer(key)).json()
    assert first["count"] == 1

    written = threading.Event()

    def slow_writer():
        with app.state.database.transaction() as session:
            store_cases.create_case(session, "adult", [Signal("pdq", Q0122, 100)], bytes(32))
            written.set()
            time.sleep(2)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    written.wait(10)
    time.sleep(1.2)
    empty = client.get("/stopncii/v1/FetchHashes", headers=bearer(key),
                       params={"nextPageToken": first["nextPageToken"]}).json()
    writer.join()
    assert empty["count"] == 0
    later = client.get("/stopncii/v1/FetchHashes", headers=bearer(key),
                       params={"startTimestamp": empty["nextSetTimestamp"]}).json()
    assert Q0122 in {r["hashValue"] for r in later["hashRecords"]}

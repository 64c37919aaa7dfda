"""The page when things go beyond the happy path, in headless Debian Chromium, real server:

- its hashing worker dies (a script that throws on a file, or cannot start): the files it held
  fail with a message, the next files get a fresh worker, and Send works for the hashes made;
- more hashes than one request may carry: sent as the CLI sends them (a request that creates
  the case, then requests that add to it), all in one case; a server whose per-request limit is
  lower than the page's starting guess is followed, not fought.

The worker is made to fail for real: Playwright routes the worker script's URL and serves the
real script with a hook prepended, or a script that throws as it loads.
"""
from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.testdata import PDQ_DIR, require_testdata
from tests.web.helpers import (go_to_file_picker, running_server, strings, wait_for_hashes,
                                wait_until)

PHOTO = PDQ_DIR / "bridge-mods" / "aaa-orig.jpg"
OTHER_PHOTO = PDQ_DIR / "bridge-mods" / "high-contrast.jpg"
WORKER_URL = "**/js/hash-worker.js"
# Runs before the real worker's own listener (same module, earlier in its body): a file named
# crash* throws out of the message handler, as an out-of-memory decode would.
CRASH_HOOK = """
self.addEventListener('message', (event) => {
  if (event.data.file.name.startsWith('crash')) {
    event.stopImmediatePropagation();
    throw new Error('test: the hashing worker crashed');
  }
});
"""


def _open_files_view(page) -> None:
    go_to_file_picker(page)


def _file_status(page, name: str) -> tuple[str, str, str]:
    item = page.locator(f"#file-list li[data-file='{name}']")
    return (item.get_attribute("data-status"), item.get_attribute("data-problem"),
            item.locator(".file-status").inner_text())


def _image(path, name: str) -> dict:
    return {"name": name, "mimeType": "image/jpeg", "buffer": path.read_bytes()}


def test_a_worker_crashing_on_a_file_fails_that_file_and_send_works(recorded_page, screenshot_dir):
    require_testdata()
    recorded = recorded_page("ja")
    page = recorded.page

    def crash_on_crash_files(route):
        real = route.fetch()
        route.fulfill(response=real, body=CRASH_HOOK + real.text())

    recorded.context.route(WORKER_URL, crash_on_crash_files)
    recorded.goto("/")
    _open_files_view(page)
    text = strings("ja")["files"]

    page.set_input_files("#file-input", [_image(PHOTO, "good.jpg")])
    wait_for_hashes(page, 1, timeout=30)
    page.set_input_files("#file-input", [_image(PHOTO, "crash.jpg")])
    wait_for_hashes(page, 2, timeout=30)
    assert _file_status(page, "good.jpg") == ("ready", "", text["ready"])
    assert _file_status(page, "crash.jpg") == ("problem", "worker_failed", text["worker_failed"])
    assert not page.is_disabled("#send")

    # The next file gets a fresh worker (served the same hooked script) and is hashed.
    page.set_input_files("#file-input", [_image(OTHER_PHOTO, "after.jpg")])
    wait_for_hashes(page, 3, timeout=30)
    assert _file_status(page, "after.jpg")[0] == "ready"
    assert len(json.loads(page.text_content("#payload"))["hashes"]) == 2
    page.screenshot(path=screenshot_dir / "ja-desktop-worker-crashed.png", full_page=True)
    page.click("#send")
    wait_until(page, "!document.getElementById('view-done').hidden", timeout=30)
    assert page.input_value("#done-ref").startswith("HG-")
    assert recorded.unexpected_errors() == []  # the crash is handled, not an uncaught error


def test_a_worker_that_cannot_start_fails_its_files_and_is_replaced(recorded_page):
    require_testdata()
    recorded = recorded_page("en")
    page = recorded.page
    served = []

    def broken_once(route):
        served.append(route.request.url)
        if len(served) == 1:
            route.fulfill(status=200, content_type="text/javascript",
                          body="throw new Error('test: the worker cannot start');\n")
        else:
            route.continue_()

    recorded.context.route(WORKER_URL, broken_once)
    recorded.goto("/")
    _open_files_view(page)
    text = strings("en")["files"]

    page.set_input_files("#file-input", [_image(PHOTO, "one.jpg"), _image(OTHER_PHOTO, "two.jpg")])
    wait_for_hashes(page, 2, timeout=30)
    for name in ("one.jpg", "two.jpg"):
        assert _file_status(page, name) == ("problem", "worker_failed", text["worker_failed"])
    assert page.is_disabled("#send")  # nothing usable yet, but nothing left spinning

    page.set_input_files("#file-input", [_image(PHOTO, "three.jpg")])
    wait_for_hashes(page, 3, timeout=30)
    assert _file_status(page, "three.jpg") == ("ready", "", text["ready"])
    assert not page.is_disabled("#send")
    assert len(served) == 2  # the broken worker was replaced by one new worker


def _videos(count: int) -> list[dict]:
    """Tiny distinct files with a video suffix: each gives two hashes (MD5, SHA-256) at once."""
    return [{"name": f"clip-{i:03d}.mp4", "mimeType": "video/mp4", "buffer": os.urandom(48)}
            for i in range(count)]


def _send_and_wait_until_added(page) -> tuple[str, str]:
    page.click("#send")
    wait_until(page, "!document.getElementById('view-done').hidden", timeout=60)
    wait_until(page, "document.getElementById('done-added').dataset.state === 'added' || "
                     "!document.getElementById('done-add-error').hidden", timeout=60)
    assert page.is_hidden("#done-add-error"), page.inner_text("#done-add-error")
    return page.input_value("#done-ref"), page.input_value("#done-token")


def _case_hashes(base: str, ref: str, token: str) -> list[dict]:
    answer = httpx.get(f"{base}/v1/cases/{ref}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "active"
    return answer.json()["hashes"]


def _posts(recorded) -> list[tuple[str, int]]:
    return [(r.url.removeprefix(recorded.base), len(json.loads(r.body)["hashes"]))
            for r in recorded.requests if r.method == "POST" and "/v1/cases" in r.url]


def test_more_hashes_than_one_request_carries_end_in_one_case(recorded_page, web_server):
    recorded = recorded_page("en")
    page = recorded.page
    recorded.goto("/")
    _open_files_view(page)
    page.set_input_files("#file-input", _videos(251))
    wait_for_hashes(page, 251, timeout=120)
    payload = json.loads(page.text_content("#payload"))["hashes"]
    assert len(payload) == 502
    assert not page.is_disabled("#send") and page.is_hidden("#files-error")

    ref, token = _send_and_wait_until_added(page)
    assert page.inner_text("#done-added") == strings("en")["done"]["added"].format(total=502)
    assert _posts(recorded) == [("/v1/cases", 500), (f"/v1/cases/{ref}/hashes", 2)]
    held = _case_hashes(web_server, ref, token)
    assert sorted((h["signal_type"], h["value"]) for h in held) == \
        sorted((h["signal_type"], h["value"]) for h in payload)
    assert recorded.unexpected_errors() == []


@pytest.mark.parametrize("limits_answer", [True, False], ids=["limits-read", "limits-lost"])
def test_the_page_follows_a_server_with_a_lower_limit(recorded_page, tmp_path, limits_answer):
    """The limit is the server's (HASHGUARD_MAX_HASHES_PER_REQUEST), not a number in the page:
    read from GET /v1/limits, or, if that answer is lost, learned from the server's refusals."""
    with running_server(tmp_path, max_hashes_per_request=120) as base:
        recorded = recorded_page("en", base=base)
        page = recorded.page
        if not limits_answer:
            recorded.context.route("**/v1/limits", lambda route: route.abort("connectionreset"))
        recorded.goto("/")
        _open_files_view(page)
        page.set_input_files("#file-input", _videos(150))
        wait_for_hashes(page, 150, timeout=120)
        payload = json.loads(page.text_content("#payload"))["hashes"]
        ref, token = _send_and_wait_until_added(page)
        add = f"/v1/cases/{ref}/hashes"
        if limits_answer:  # 300 hashes in batches of the server's 120, no refusal
            assert _posts(recorded) == [("/v1/cases", 120), (add, 120), (add, 60)]
        else:  # refused at 300, refused at 150, then batches of 75 fit; one case
            assert _posts(recorded) == [("/v1/cases", 300), ("/v1/cases", 150),
                                        ("/v1/cases", 75), (add, 75), (add, 75), (add, 75)]
        held = _case_hashes(base, ref, token)
        assert {h["value"] for h in held} == {h["value"] for h in payload}


def test_additions_that_fail_are_retried_or_reported_with_the_case_kept(recorded_page, tmp_path,
                                                                        screenshot_dir):
    """A lost answer to an addition is retried; one the server refuses (the case is full) is
    reported under the reference and token, which stay shown, with a Try again button."""
    with running_server(tmp_path, max_hashes_per_request=100, max_hashes_per_case=150) as base:
        recorded = recorded_page("ja", base=base)
        page = recorded.page
        dropped = []

        def drop_first_addition(route):
            if not dropped:
                dropped.append(route.request.url)
                route.abort("connectionreset")
            else:
                route.continue_()

        recorded.context.route("**/v1/cases/*/hashes", drop_first_addition)
        # The limit is learned from refusals here (the path test_the_page_follows_... covers
        # with the limits answer lost), so the additions meet the case's limit mid-way.
        recorded.context.route("**/v1/limits", lambda route: route.abort("connectionreset"))
        recorded.goto("/")
        _open_files_view(page)
        page.set_input_files("#file-input", _videos(120))
        wait_for_hashes(page, 120, timeout=120)
        page.click("#send")
        wait_until(page, "!document.getElementById('view-done').hidden", timeout=60)
        wait_until(page, "!document.getElementById('done-add-error').hidden", timeout=60)
        ref, token = page.input_value("#done-ref"), page.input_value("#done-token")
        text = strings("ja")
        assert page.inner_text("#done-add-error") == text["done"]["add_failed"].format(
            missing=120, total=240, reason=text["errors"]["case_hash_limit"])
        assert page.is_visible("#done-retry")
        page.screenshot(path=screenshot_dir / "ja-desktop-additions-failed.png", full_page=True)
        add = f"/v1/cases/{ref}/hashes"
        # 240 hashes: refused at 240 and 120, created with 60; the first addition's connection
        # dropped and retried; the third addition would pass the case's 150.
        assert _posts(recorded) == [("/v1/cases", 240), ("/v1/cases", 120), ("/v1/cases", 60),
                                    (add, 60), (add, 60), (add, 60)]
        assert len(dropped) == 1
        assert len(_case_hashes(base, ref, token)) == 120

        with page.expect_response(lambda r: r.url.endswith(add)) as answer:
            page.click("#done-retry")
        assert answer.value.status == 422
        wait_until(page, "!document.getElementById('done-retry-row').hidden", timeout=30)
        assert _posts(recorded)[-2:] == [(add, 60), (add, 60)]
        assert page.input_value("#done-token") == token

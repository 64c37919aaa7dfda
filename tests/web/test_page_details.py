"""Issue 18's findings on the page, one test each, in headless Debian Chromium against the real
server:

- after a withdrawal the page showed a literal "null" under the case (ja and en, phone and
  desktop);
- times were 9 hours off in Japan on SQLite (an offset-less time read as local time): with the
  browser in Asia/Tokyo, the page shows the API's UTC time in Tokyo time, on SQLite and
  PostgreSQL;
- "or press Esc" was shown on phones; the under-18 choice did not say who is told;
- the token box clipped the token on a 320-px screen; the new grouped tokens must show whole,
  wrapping only between groups;
- the phone's files view printed a video's vPDQ value in full (~100 lines).
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest

from hashing.signals import pdq as pdq_signal
from tests.helpers import admin_connection, pg_url
from tests.testdata import PDQ_DIR, TMK_DIR, require_testdata
from tests.web.helpers import (
    DESKTOP,
    PHONE,
    go_to_file_picker,
    overflowing,
    running_server,
    strings,
    text_problems,
    wait_for_hashes,
    wait_until,
)

PHOTO = PDQ_DIR / "bridge-mods" / "aaa-orig.jpg"
VIDEO = TMK_DIR / "chair-19-sd-bar.mp4"
NARROW = {"width": 320, "height": 640}
TOKYO = "Asia/Tokyo"


def new_context(browser, lang: str, viewport: dict, **options):
    return browser.new_context(locale={"ja": "ja-JP", "en": "en-US"}[lang], viewport=viewport,
                               timezone_id=TOKYO, **options)


def open_page(context, base: str, path: str = "/"):
    page = context.new_page()
    page.goto(base + path)
    page.wait_for_selector("body[data-ready='true']")
    return page


def api_case(base: str) -> dict:
    require_testdata()
    [photo] = pdq_signal.hash_file(PHOTO)
    answer = httpx.post(f"{base}/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "pdq", "value": photo.value, "quality": photo.quality}]}, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()


def tokyo_text(page, lang: str, iso_utc: str) -> str:
    """How the person's browser writes this instant in Tokyo time (Python computes the instant:
    a time without its offset would come out 9 hours off here)."""
    instant = datetime.fromisoformat(iso_utc.replace("Z", "+00:00"))
    assert instant.tzinfo is not None, iso_utc
    local = instant.astimezone(ZoneInfo(TOKYO))
    return page.evaluate(
        """([y, m, d, h, min, lang]) => new Date(y, m - 1, d, h, min).toLocaleString(
             lang, { dateStyle: 'medium', timeStyle: 'short' })""",
        [local.year, local.month, local.day, local.hour, local.minute, lang])


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory):
    name = f"hashguard_web_{uuid.uuid4().hex[:8]}"
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with running_server(tmp_path_factory.mktemp("web-pg"), database_url=pg_url(name)) as base:
            yield base
    finally:
        with admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_times_shown_in_tokyo_time(browser, web_server, request, database):
    base = web_server if database == "sqlite" else request.getfixturevalue("postgres_server")
    case = api_case(base)
    context = new_context(browser, "ja", DESKTOP)
    try:
        page = open_page(context, base, "/#status")
        page.fill("#status-ref", case["case_ref"])
        page.fill("#status-token", case["token"])
        page.click("#status-form button[type=submit]")
        wait_until(page, "!document.getElementById('status-result').hidden")
        answer = httpx.get(f"{base}/v1/cases/{case['case_ref']}",
                           headers={"Authorization": f"Bearer {case['token']}"}).json()
        facts = page.locator("#status-result dl dd")  # reference, state, pathway, created, updated
        for index, field in [(3, "created"), (4, "updated")]:
            iso = answer[field]
            shown = facts.nth(index).inner_text()
            assert shown == tokyo_text(page, "ja", iso), (field, iso, shown)
            # To the hour, in UTC: the instant is now's hour, not 9 hours away.
            assert abs((datetime.now(timezone.utc) - datetime.fromisoformat(
                iso.replace("Z", "+00:00"))).total_seconds()) < 3700
    finally:
        context.close()


@pytest.mark.parametrize("screen", ["320", "desktop"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_no_null_after_a_withdrawal(browser, web_server, lang, screen):
    case = api_case(web_server)
    context = new_context(browser, lang, NARROW if screen == "320" else DESKTOP)
    try:
        page = open_page(context, web_server, "/#withdraw")
        page.fill("#withdraw-ref", case["case_ref"])
        page.fill("#withdraw-token", case["token"])
        page.check("#withdraw-confirm")
        page.click("#withdraw-form button[type=submit]")
        wait_until(page, "!document.getElementById('withdraw-result').hidden")
        assert text_problems(page, lang) == []
        assert "null" not in page.inner_text("#withdraw-result")
        assert overflowing(page) == []
    finally:
        context.close()


def test_esc_hint_only_with_a_keyboard_and_the_under18_note(browser, web_server):
    phone = new_context(browser, "en", PHONE, is_mobile=True, has_touch=True)
    desktop = new_context(browser, "en", DESKTOP)
    text = strings("en")
    try:
        page = open_page(phone, web_server)
        assert not page.is_visible("#quick-exit-help")
        assert page.is_visible("#quick-exit")
        page = open_page(desktop, web_server)
        assert page.is_visible("#quick-exit-help")
        page.click("#view-ask button[data-go='home']")
        page.click("#view-home button[data-go='pathway']")
        # Under 18: it says plainly who is told (no one, by hashguard).
        assert text["pathway"]["under18_told"] in page.inner_text("#pathway-under18-help")
    finally:
        phone.close()
        desktop.close()


@pytest.mark.parametrize("token", [
    "7K3M-Q9XD-ABCD-EFGH-JKMN-PQRS-TVWX-YZ23",  # the new shape: groups of four
    "mKZ_H2PpEIzG8vG-abcdefghijklmnopqrstuvwxyz0",  # the 43-character tokens already issued
])
def test_the_token_box_shows_either_shape_whole_at_320_px(browser, web_server, token):
    context = new_context(browser, "en", NARROW)
    try:
        page = open_page(context, web_server)
        # The real box and the page's own module, shown as the done view shows a fresh token.
        page.evaluate("""async (token) => {
            const { tokenPieces } = await import('./js/token.js');
            const box = document.getElementById('done-token-text');
            box.replaceChildren(...tokenPieces(token).map((piece) => {
              const span = document.createElement('span');
              span.textContent = piece;
              return span;
            }));
            for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== 'view-done';
        }""", token)
        box = page.locator("#done-token-text")
        assert re.sub(r"\s", "", box.inner_text()) == token
        assert overflowing(page) == []
        lines = page.evaluate("""() => {
            const box = document.getElementById('done-token-text');
            const range = document.createRange();
            range.selectNodeContents(box);
            return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
        }""")
        assert lines >= 2  # 320 px: it wraps instead of being clipped
        if "_" not in token:  # each group whole on one line
            groups = page.eval_on_selector_all(
                "#done-token-text span", "spans => spans.map((s) => s.getClientRects().length)")
            assert groups and set(groups) == {1}
    finally:
        context.close()


@pytest.mark.slow
def test_phone_files_view_shows_vpdq_as_a_frame_count(browser, web_server):
    require_testdata()
    context = new_context(browser, "en", PHONE, is_mobile=True, has_touch=True)
    try:
        page = open_page(context, web_server)
        go_to_file_picker(page)
        page.set_input_files("#file-input", [str(VIDEO)])
        wait_for_hashes(page, 1, timeout=300)
        code = page.locator("#file-list code[data-signal=vpdq]")
        frames = len(json.loads(code.get_attribute("data-value")))
        assert frames > 1
        assert code.inner_text() == strings("en")["files"]["vpdq_frames"].replace("{frames}", str(frames))
        assert code.evaluate("c => c.getClientRects().length") <= 2
    finally:
        context.close()

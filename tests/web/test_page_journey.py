"""A person's whole journey on the page (issue 18), in headless Debian Chromium against the real
server, in Japanese and English, on a 320-px phone and a desktop, with the browser in Tokyo:
submit, add files to the case, status, withdraw. On every view: no "null", "undefined", raw
i18n key or placeholder line, and no text wider than its box (scrollWidth <= clientWidth).
Screenshots go to test-artifacts/screenshots/journey-*.png.
"""
from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from hashing.signals import pdq as pdq_signal
from tests.testdata import PDQ_DIR, require_testdata
from tests.web.helpers import (
    DESKTOP,
    overflowing,
    strings,
    text_problems,
    wait_for_hashes,
    wait_until,
)

PHOTO = PDQ_DIR / "bridge-mods" / "aaa-orig.jpg"
MORE_PHOTOS = [PDQ_DIR / "misc-images" / "c.png",
               PDQ_DIR / "misc-images" / "wee.jpg"]
NARROW = {"width": 320, "height": 640}
TOKYO = "Asia/Tokyo"
# Every language the page offers, with a browser locale that picks it.
LOCALES = {"ja": "ja-JP", "en": "en-US", "zh-Hans": "zh-CN", "ko": "ko-KR", "vi": "vi-VN",
           "tl": "fil-PH", "pt-BR": "pt-BR", "ne": "ne-NP"}


def open_page(browser, base: str, lang: str, viewport: dict, **options):
    context = browser.new_context(locale=LOCALES[lang], viewport=viewport,
                                  timezone_id=TOKYO, accept_downloads=True, **options)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready='true']")
    return context, page, errors


def check_view(page, lang: str, folder: Path, name: str) -> None:
    page.screenshot(path=folder / f"journey-{name}.png", full_page=True)
    assert text_problems(page, lang) == [], name
    assert overflowing(page) == [], name


@pytest.mark.slow
@pytest.mark.parametrize("screen", ["320", "desktop"])
@pytest.mark.parametrize("lang", list(LOCALES))
def test_submit_add_status_withdraw(browser, web_server, screenshot_dir, lang, screen):
    require_testdata()
    text = strings(lang)
    context, page, errors = open_page(browser, web_server, lang,
                                      NARROW if screen == "320" else DESKTOP)
    tag = f"{lang}-{screen}"
    try:
        check_view(page, lang, screenshot_dir, f"{tag}-0-ask")
        page.click("#view-ask button[data-go='crisis']")
        check_view(page, lang, screenshot_dir, f"{tag}-1-crisis")
        page.click("#view-crisis button[data-go='pathway']")
        page.check("#pathway-under18")
        check_view(page, lang, screenshot_dir, f"{tag}-2-pathway")
        page.click("#pathway-form button[type=submit]")

        # Submit one photo: the reference and the token, the token whole in its box.
        page.set_input_files("#file-input", [str(PHOTO)])
        wait_for_hashes(page, 1)
        assert page.inner_text("#file-count") == text["files"]["picked"].replace("{files}", "1")
        check_view(page, lang, screenshot_dir, f"{tag}-3-files")
        page.click("#send")
        wait_until(page, "!document.getElementById('view-done').hidden")
        ref = page.input_value("#done-ref")
        token = page.input_value("#done-token")
        assert re.sub(r"\s", "", page.inner_text("#done-token-text")) == token
        check_view(page, lang, screenshot_dir, f"{tag}-4-done")
        with page.expect_download() as download:
            page.click("#save-file")
        # Neutral: nothing in the phone's downloads names the service or a case.
        assert re.fullmatch(r"note-\d{4}-\d\d-\d\d\.txt", download.value.suggested_filename)
        assert token in Path(download.value.path()).read_text(encoding="utf-8")
        page.click("#done-finish")

        # Add two more photos to the same case, the token typed with spaces around it.
        page.click("#view-home button[data-go='add']")
        page.fill("#add-ref", ref.lower())
        page.fill("#add-token", f"  {token} ")
        check_view(page, lang, screenshot_dir, f"{tag}-5-add")
        page.click("#add-form button[type=submit]")
        wait_until(page, "!document.getElementById('view-files').hidden")
        assert ref in page.inner_text("#files-target")
        page.set_input_files("#file-input", [str(p) for p in MORE_PHOTOS])
        wait_for_hashes(page, 2)
        assert page.inner_text("#file-count") == text["files"]["picked"].replace("{files}", "2")
        check_view(page, lang, screenshot_dir, f"{tag}-6-add-files")
        with page.expect_response(lambda r: r.url.endswith(f"/v1/cases/{ref}/hashes")) as added:
            page.click("#send")
        assert added.value.status == 200
        wait_until(page, "!document.getElementById('view-added').hidden")
        assert ref in page.inner_text("#added-message")
        check_view(page, lang, screenshot_dir, f"{tag}-7-added")

        # Status: three hashes, times in Tokyo.
        page.click("#view-added button[data-go='status']")
        page.fill("#status-ref", ref)
        page.fill("#status-token", token)
        page.click("#status-form button[type=submit]")
        wait_until(page, "!document.getElementById('status-result').hidden")
        api_view = httpx.get(f"{web_server}/v1/cases/{ref}",
                             headers={"Authorization": f"Bearer {token}"}).json()
        assert len(api_view["hashes"]) == 3
        assert page.locator("#status-result tbody tr").count() == 3
        for value in [pdq_signal.hash_file(p)[0].value for p in [PHOTO, *MORE_PHOTOS]]:
            assert value in page.inner_text("#status-result table")
        check_view(page, lang, screenshot_dir, f"{tag}-8-status")

        # Withdraw: the case's facts, and nothing that reads "null".
        page.click("#status-result .actions button")
        page.check("#withdraw-confirm")
        page.click("#withdraw-form button[type=submit]")
        wait_until(page, "!document.getElementById('withdraw-result').hidden")
        assert page.get_attribute("#withdraw-result [data-field=status]", "data-value") == "withdrawn"
        assert text["status"]["no_hashes_withdrawn"] in page.inner_text("#withdraw-result")
        check_view(page, lang, screenshot_dir, f"{tag}-9-withdrawn")
        assert errors == []
    finally:
        context.close()


"""Each language on the page itself, in headless Debian Chromium against the real server.

- Every view in every language at 320 px (the narrowest phone) and on a desktop: the browser's
  locale picks the
  language, `<html lang>` says it, no text overflows its box (checked in the DOM:
  scrollWidth <= clientWidth), no raw key or unfilled {placeholder} shows, nothing falls back to
  English, the support lines are listed. Screenshots: test-artifacts/screenshots/
  `{lang}-{320|desktop}-{n}-{view}.png`.
- The switcher: every language named in itself; a choice survives a reload through `?lang=`,
  adds no history entry and stores nothing.
- A string missing from a translation shows in English (marked lang="en"), never as its key; a
  translation that cannot load leaves the page in English.
"""
from __future__ import annotations

import json

import pytest

from tests.testdata import PDQ_DIR, require_testdata
from tests.web.helpers import WEB, strings, wait_for_hashes, wait_until

LOCALES = {"ja": "ja-JP", "en": "en-US", "zh-Hans": "zh-CN", "ko": "ko-KR", "vi": "vi-VN",
           "tl": "fil-PH", "pt-BR": "pt-BR", "ne": "ne-NP"}
NARROW = {"width": 320, "height": 640}
SCREENS = {"320": NARROW, "desktop": {"width": 1280, "height": 900}}
PHOTO = PDQ_DIR / "bridge-mods" / "aaa-orig.jpg"
LOW_QUALITY = PDQ_DIR / "misc-images" / "small.jpg"

# Visible text boxes whose content is wider than the box; inputs hold data (a token, a reference),
# not translated text, and boxes that scroll by design (the payload, the hash table) are skipped.
OVERFLOW_JS = """() => {
  const out = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) out.push(`page scrolls sideways: ${root.scrollWidth}px`);
  for (const el of document.body.querySelectorAll('*')) {
    if (!el.getClientRects().length || ['INPUT', 'TEXTAREA', 'PRE', 'CODE'].includes(el.tagName)) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || ['auto', 'scroll'].includes(style.overflowX)) continue;
    if (el.closest('.table-wrap, .payload')) continue;
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())
      || ['BUTTON', 'SELECT', 'LABEL'].includes(el.tagName);
    if (!text) continue;
    const box = el.getBoundingClientRect();
    const name = `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.className}`
      + ` "${el.textContent.trim().slice(0, 40)}"`;
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth) {
      out.push(`${name}: text ${el.scrollWidth}px in a ${el.clientWidth}px box`);
    }
    if (box.right > root.clientWidth + 0.5 || box.left < -0.5) {
      out.push(`${name}: box ${Math.round(box.left)}..${Math.round(box.right)}px`);
    }
  }
  return out;
}"""

TEXT_JS = """() => ({
  text: document.body.innerText,
  empty: [...document.querySelectorAll('[data-i18n]')]
    .filter((el) => el.getClientRects().length && !el.textContent.trim())
    .map((el) => el.dataset.i18n),
  english: [...document.querySelectorAll('[data-i18n][lang=en]')].map((el) => el.dataset.i18n),
})"""


def leaf_keys(node, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [k for key, value in node.items() for k in leaf_keys(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


KEYS = [key for key in leaf_keys(strings("en")) if "." in key]


def check_view(page, lang: str, view: str, folder, step: int) -> None:
    """The shown view: no overflow, no raw key or placeholder, nothing empty or in English."""
    screen = "320" if page.viewport_size["width"] == 320 else "desktop"
    page.screenshot(path=folder / f"{lang}-{screen}-{step}-{view}.png", full_page=True)
    assert page.evaluate("document.documentElement.lang") == lang
    assert page.evaluate(OVERFLOW_JS) == [], (lang, view)
    seen = page.evaluate(TEXT_JS)
    assert [key for key in KEYS if key in seen["text"]] == [], (lang, view, "raw keys")
    assert "{" not in seen["text"] and "}" not in seen["text"], (lang, view, "placeholder")
    assert seen["empty"] == [], (lang, view, "empty strings")
    if lang != "en":
        assert seen["english"] == [], (lang, view, "fell back to English")


def new_page(browser, web_server, lang: str, viewport=NARROW, path: str = "/"):
    context = browser.new_context(locale=LOCALES[lang], viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(web_server + path)
    page.wait_for_selector("body[data-ready='true']")
    return context, page, errors


@pytest.mark.slow
@pytest.mark.parametrize("screen", list(SCREENS))
@pytest.mark.parametrize("lang", list(LOCALES))
def test_every_view(browser, web_server, screenshot_dir, lang, screen):
    require_testdata()
    text = strings(lang)
    context, page, errors = new_page(browser, web_server, lang, SCREENS[screen])
    try:
        # The browser's locale chose the language; the switcher shows it.
        assert page.input_value("#language-select") == lang
        assert page.inner_text("#ask-title") == text["crisis"]["question"]
        check_view(page, lang, "ask", screenshot_dir, 0)

        page.click("#view-ask button[data-go='crisis']")
        assert page.inner_text("#crisis-title") == text["crisis"]["title"]
        # Lines for this language, or the English ones: never an empty "who you can call".
        names = page.eval_on_selector_all("#crisis-support-list li .support-name",
                                          "els => els.map(e => e.textContent.trim())")
        assert names and all(names), (lang, names)
        check_view(page, lang, "crisis", screenshot_dir, 1)

        page.click("#view-crisis button[data-go='home']")
        assert page.inner_text("#home-title") == text["home"]["title"]
        check_view(page, lang, "home", screenshot_dir, 2)

        page.click("#view-home button[data-go='pathway']")
        page.click("#pathway-form button[type=submit]")
        assert page.inner_text("#pathway-error") == text["pathway"]["required"]
        check_view(page, lang, "pathway", screenshot_dir, 3)
        page.check("#pathway-adult")
        page.click("#pathway-form button[type=submit]")

        page.set_input_files("#file-input", [str(PHOTO), str(LOW_QUALITY)])
        wait_for_hashes(page, 2)
        low = page.locator(f"#file-list li[data-file='{LOW_QUALITY.name}'] .file-status")
        assert low.inner_text() == text["files"]["low_quality"]
        check_view(page, lang, "files", screenshot_dir, 4)

        page.click("#send")
        wait_until(page, "!document.getElementById('view-done').hidden")
        case_ref, token = page.input_value("#done-ref"), page.input_value("#done-token")
        assert page.inner_text("#view-done .warning") == text["done"]["warning"]
        check_view(page, lang, "done", screenshot_dir, 5)

        page.click("#done-finish")  # its confirm() is accepted
        page.click("#view-home button[data-go='status']")
        page.fill("#status-ref", case_ref)
        page.fill("#status-token", token)
        page.click("#status-form button[type=submit]")
        wait_until(page, "!document.getElementById('status-result').hidden")
        assert (page.inner_text("#status-result [data-field=status]")
                == text["status"]["state_active"])
        check_view(page, lang, "status", screenshot_dir, 6)

        page.click("#status-result .actions button")
        page.click("#withdraw-form button[type=submit]")
        assert page.inner_text("#withdraw-error") == text["withdraw"]["confirm_required"]
        check_view(page, lang, "withdraw", screenshot_dir, 7)
        page.check("#withdraw-confirm")
        page.click("#withdraw-form button[type=submit]")
        wait_until(page, "!document.getElementById('withdraw-result').hidden")
        assert text["withdraw"]["done"].format(ref=case_ref) in page.inner_text("#withdraw-result")
        check_view(page, lang, "withdrawn", screenshot_dir, 8)
        assert errors == []
    finally:
        context.close()


def test_switcher_names_each_language_in_itself_and_keeps_the_choice(browser, web_server):
    names = json.loads((WEB / "i18n" / "status.json").read_text(encoding="utf-8"))
    context, page, errors = new_page(browser, web_server, "en")
    try:
        # A labelled <select>: found by its label, as a screen reader announces it.
        select = page.get_by_label(strings("en")["language"]["label"], exact=True)
        assert select.evaluate("el => el.id") == "language-select"
        options = page.eval_on_selector_all(
            "#language-select option", "els => els.map(o => [o.value, o.lang, o.textContent])")
        assert options == [[lang, lang, names[lang]["name"]] for lang in LOCALES]

        history = page.evaluate("history.length")
        page.select_option("#language-select", "vi")
        wait_until(page, "document.documentElement.lang === 'vi'")
        assert page.inner_text("#ask-title") == strings("vi")["crisis"]["question"]
        assert page.get_by_label(strings("vi")["language"]["label"], exact=True).count() == 1
        assert page.url.endswith("/?lang=vi")
        assert page.evaluate("history.length") == history  # no new entry for Back to find

        page.reload()
        page.wait_for_selector("body[data-ready='true']")
        assert page.evaluate("document.documentElement.lang") == "vi"
        assert page.input_value("#language-select") == "vi"
        # Kept in the address only: no cookie, no storage.
        assert context.cookies() == []
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0
        assert errors == []
    finally:
        context.close()


def test_a_link_with_lang_wins_over_the_browser(browser, web_server):
    context, page, _ = new_page(browser, web_server, "ja", path="/?lang=ne#status")
    try:
        assert page.evaluate("document.documentElement.lang") == "ne"
        assert page.is_visible("#view-status")
        assert page.inner_text("#status-title") == strings("ne")["status"]["title"]
    finally:
        context.close()


def test_a_missing_string_shows_in_english_never_as_its_key(browser, web_server):
    partial = strings("ko")
    del partial["crisis"]["question"]
    del partial["home"]["title"]
    context = browser.new_context(locale="ko-KR", viewport=NARROW)
    context.route("**/i18n/ko.json", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(partial)))
    page = context.new_page()
    try:
        page.goto(web_server + "/")
        page.wait_for_selector("body[data-ready='true']")
        assert page.evaluate("document.documentElement.lang") == "ko"
        english = strings("en")
        assert page.inner_text("#ask-title") == english["crisis"]["question"]
        assert page.get_attribute("#ask-title", "lang") == "en"  # read out in English
        assert page.inner_text("#view-ask .lead") == partial["crisis"]["question_lead"]
        assert page.get_attribute("#view-ask .lead", "lang") is None
        page.click("#view-ask button[data-go='home']")
        assert page.inner_text("#home-title") == english["home"]["title"]
        assert "crisis.question" not in page.inner_text("body")
        assert "home.title" not in page.inner_text("body")
    finally:
        context.close()


def test_a_translation_that_cannot_load_leaves_the_page_in_english(browser, web_server):
    context = browser.new_context(locale="ne-NP", viewport=NARROW)
    context.route("**/i18n/ne.json", lambda route: route.fulfill(status=503, body="down"))
    page = context.new_page()
    try:
        page.goto(web_server + "/")
        page.wait_for_selector("body[data-ready='true']", timeout=15000)
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.input_value("#language-select") == "en"
        assert page.inner_text("#ask-title") == strings("en")["crisis"]["question"]
    finally:
        context.close()

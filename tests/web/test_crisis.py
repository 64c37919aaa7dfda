"""Crisis first, quick exit, no trace (issue 10), in headless Debian Chromium.

- The first screen asks "Is someone threatening you right now?"; "yes" shows what to do now
  (do not pay, keep the chat, block and report, tell someone) with the support numbers, then leads
  into the case flow. ja and en, screenshots at phone width.
- Quick exit (button and Esc) replaces the page: Back does not return to it.
- The operator's support.json is validated (the page's own validator) and the Japanese list has
  the numbers from the seed report, each with what it is for.
- axe-core (npm) finds no serious or critical accessibility violation on any view, in either
  language.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.testdata import PDQ_DIR, require_testdata
from tests.web.helpers import (
    PHONE,
    PROJECT_ROOT,
    node_available,
    wait_for_hashes,
    wait_until,
)

WEB = PROJECT_ROOT / "web"
HERE = Path(__file__).resolve().parent
JA_NUMBERS = ["#9110", "#8103", "#8891", "0120-279-338", "0570-064-556"]
AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"


def strings(lang: str) -> dict:
    return json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def support_config() -> dict:
    return json.loads((WEB / "support.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_crisis_path(recorded_page, screenshot_dir, lang):
    text = strings(lang)["crisis"]
    recorded = recorded_page(lang, PHONE)
    page = recorded.page
    recorded.goto("/")
    assert page.is_visible("#view-ask")
    assert page.inner_text("#ask-title") == text["question"]
    assert page.is_visible("#quick-exit")
    page.screenshot(path=screenshot_dir / f"{lang}-phone-0-ask.png", full_page=True)

    page.click("#view-ask button[data-go='crisis']")
    assert page.is_visible("#view-crisis")
    steps = page.inner_text("#view-crisis .crisis-steps")
    for n in range(1, 5):
        assert text[f"step{n}_title"] in steps
    listed = page.inner_text("#crisis-support-list")
    # The service's country's lines whatever the language (issue 18: the English page listed
    # only placeholders), each explained in the page's language, then what to do elsewhere.
    for country in support_config()["countries"]:
        assert country["name"][lang] in listed
        for line in country["lines"]:
            assert line["number"] in listed
            assert line["label"][lang] in listed
            assert line["description"][lang] in listed
    assert strings(lang)["support"]["elsewhere"] in listed
    assert "placeholder" not in listed.lower()
    hrefs = page.eval_on_selector_all("#crisis-support-list a", "as => as.map(a => a.href)")
    assert "tel:%239110" in hrefs and "tel:0120279338" in hrefs
    page.screenshot(path=screenshot_dir / f"{lang}-phone-0-crisis.png", full_page=True)

    # Then: stop it from spreading.
    page.click("#view-crisis button[data-go='pathway']")
    assert page.is_visible("#view-pathway")
    assert page.title() == strings(lang)["app"]["title"]  # neutral, says nothing of the topic
    assert recorded.unexpected_errors() == []


@pytest.mark.parametrize("how", ["button", "escape"])
def test_quick_exit_leaves_nothing_to_go_back_to(recorded_page, how):
    recorded = recorded_page("en", PHONE)
    page = recorded.page
    before = "data:text/html,<title>before</title><p>before"
    page.goto(before)
    recorded.goto("/")
    page.click("#view-ask button[data-go='crisis']")  # views add no history entries
    page.click("#view-crisis button[data-go='pathway']")
    with page.expect_navigation():
        if how == "button":
            page.click("#quick-exit")
        else:
            page.keyboard.press("Escape")
    assert page.url == support_config()["quick_exit_url"]
    # Walk the whole history back: the page before is there, this service is not.
    visited = []
    while page.go_back() is not None or page.url not in visited[-1:]:
        visited.append(page.url)
        if len(visited) > 5:
            break
    assert any(url.startswith("data:text/html") for url in visited)
    assert not any(url.startswith(recorded.base) for url in visited), visited


def test_support_config_is_valid_and_the_validator_catches_mistakes(tmp_path):
    config = support_config()
    [japan] = config["countries"]
    assert [line["number"] for line in japan["lines"]][:5] == JA_NUMBERS
    assert all(line["label"]["en"] and line["description"]["en"] for line in japan["lines"])
    line = japan["lines"][0]

    def japan_with(**changes):
        return {**config, "countries": [{**japan, "lines": [{**line, **changes}]}]}

    broken = {
        "no-en": japan_with(label={"ja": line["label"]["ja"]}),
        "bad-exit": {**config, "quick_exit_url": "javascript:alert(1)"},
        "bad-number": japan_with(number="call me"),
        "empty-name": japan_with(description={**line["description"], "en": " "}),
    }
    paths = [str(WEB / "support.json")]
    for name, value in broken.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(value))
        paths.append(str(tmp_path / f"{name}.json"))
    (tmp_path / "not-json.json").write_text("{")
    paths.append(str(tmp_path / "not-json.json"))
    done = subprocess.run([node_available(), str(HERE / "support_check.mjs"), *paths],
                          cwd=PROJECT_ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    results = {Path(r["path"]).stem: r["problems"] for r in json.loads(done.stdout)}
    assert results.pop("support") == []
    assert results["no-en"] == [
        "countries[0].lines[0].label.en must be a non-empty string (the fallback text)"]
    assert "quick_exit_url" in results["bad-exit"][0]
    assert "number" in results["bad-number"][0]
    assert "description.en" in results["empty-name"][0]
    assert results["not-json"][0].startswith("not JSON")


def _axe(page) -> list[dict]:
    if not page.evaluate("typeof axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's CSP (rightly) allows no such script.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    return page.evaluate("""() => axe.run(document, {resultTypes: ['violations']}).then(r =>
        r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
          .map(v => ({id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.map(n => n.target.join(' '))})))""")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_no_serious_accessibility_violations_on_any_view(recorded_page, lang):
    require_testdata()
    if not AXE.is_file():
        pytest.fail("axe-core is missing: run `npm ci` (make test does)", pytrace=False)
    recorded = recorded_page(lang, PHONE)
    page = recorded.page
    page.on("dialog", lambda dialog: dialog.accept())
    recorded.goto("/")
    found = {}
    found["ask"] = _axe(page)
    page.click("#view-ask button[data-go='crisis']")
    found["crisis"] = _axe(page)
    page.click("#view-crisis button[data-go='home']")
    found["home"] = _axe(page)
    page.click("#view-home button[data-go='pathway']")
    page.click("#pathway-form button[type=submit]")  # with its error shown
    found["pathway"] = _axe(page)
    page.check("#pathway-adult")
    page.click("#pathway-form button[type=submit]")
    found["files-empty"] = _axe(page)
    page.set_input_files("#file-input", [str(PDQ_DIR / "bridge-mods" / "aaa-orig.jpg"),
                                         str(PDQ_DIR / "misc-images" / "small.jpg")])
    wait_for_hashes(page, 2)
    page.click("#payload-details summary")
    found["files"] = _axe(page)
    page.click("#send")
    wait_until(page, "!document.getElementById('view-done').hidden")
    ref, token = page.input_value("#done-ref"), page.input_value("#done-token")
    found["done"] = _axe(page)
    page.click("#done-finish")
    page.click("#view-home button[data-go='status']")
    page.fill("#status-ref", ref)
    page.fill("#status-token", token)
    page.click("#status-form button[type=submit]")
    wait_until(page, "!document.getElementById('status-result').hidden")
    found["status"] = _axe(page)
    page.click("#status-result .actions button")
    page.check("#withdraw-confirm")
    page.click("#withdraw-form button[type=submit]")
    wait_until(page, "!document.getElementById('withdraw-result').hidden")
    found["withdraw"] = _axe(page)
    assert {view: v for view, v in found.items() if v} == {}

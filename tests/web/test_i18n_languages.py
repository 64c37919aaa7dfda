"""Eight languages: every translation says everything the English says (no more), with the same
placeholders and line breaks; each one's review status is on record and published; the page picks
the language from the browser's preferences the way readers actually set them.

The page-level checks (each language rendered at 320 px, fallback to English in the browser) are
in test_i18n_pages.py.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.web.helpers import PROJECT_ROOT, WEB, node_available, strings

LANGUAGES = ["ja", "en", "zh-Hans", "ko", "vi", "tl", "pt-BR", "ne"]
NEW = ["zh-Hans", "ko", "vi", "tl", "pt-BR", "ne"]
TRANSLATIONS = [lang for lang in LANGUAGES if lang != "en"]
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def flat(node, prefix: str = "") -> dict[str, object]:
    """{'home.title': 'Stop…', …}: every leaf of a translation file under its dotted key."""
    if isinstance(node, dict):
        out: dict[str, object] = {}
        for key, value in node.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


def status() -> dict:
    return json.loads((WEB / "i18n" / "status.json").read_text(encoding="utf-8"))


def page_languages() -> dict:
    """What web/js/i18n.js itself offers (LANGUAGES, NAMES), read by running it under Node."""
    done = subprocess.run([node_available(), str(Path(__file__).with_name("i18n_match.mjs"))],
                          input=b"[]", cwd=PROJECT_ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def choose(cases: list[tuple[str, list[str]]]) -> list[str]:
    payload = json.dumps([{"search": search, "languages": langs} for search, langs in cases])
    done = subprocess.run([node_available(), str(Path(__file__).with_name("i18n_match.mjs"))],
                          input=payload.encode(), cwd=PROJECT_ROOT, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)["chosen"]


def test_the_page_offers_every_language_with_a_file_and_a_status():
    offered = page_languages()
    assert offered["languages"] == LANGUAGES
    recorded = status()
    assert set(recorded) - {"_comment"} == set(LANGUAGES)
    for lang in LANGUAGES:
        assert (WEB / "i18n" / f"{lang}.json").is_file(), lang
        assert recorded[lang]["name"] == offered["names"][lang]
    # No stray translation file the switcher does not offer.
    files = {p.stem for p in (WEB / "i18n").glob("*.json")} - {"status"}
    assert files == set(LANGUAGES)


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_every_key_of_english_and_no_other(lang):
    english, translated = flat(strings("en")), flat(strings(lang))
    assert sorted(set(english) - set(translated)) == [], f"{lang} lacks these keys"
    assert sorted(set(translated) - set(english)) == [], f"{lang} has keys English does not"
    for key, value in english.items():
        assert type(translated[key]) is type(value), (lang, key)


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_placeholders_line_breaks_and_markup_match_english(lang):
    english, translated = flat(strings("en")), flat(strings(lang))
    for key, value in english.items():
        if not isinstance(value, str):
            continue
        text = translated[key]
        assert text.strip(), (lang, key, "empty")
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(value)), (lang, key)
        assert text.count("\n") == value.count("\n"), (lang, key, "line breaks")
        assert ("<" in text) == ("<" in value), (lang, key, "markup")


@pytest.mark.parametrize("lang", NEW)
def test_new_translations_are_translated_not_copied(lang):
    """An English file copied under a new name would pass the key checks: most strings must
    differ. (Names, file names, hash type labels and loanwords such as Tagalog's "Status" may
    stay as they are.)"""
    english, translated = flat(strings("en")), flat(strings(lang))
    same = [key for key, value in english.items() if translated[key] == value]
    assert len(same) <= len(english) // 15, (lang, same)


def test_status_is_honest_about_review():
    recorded = status()
    for lang in LANGUAGES:
        entry = recorded[lang]
        assert isinstance(entry["reviewed_by_native_speaker"], bool), lang
        assert entry["translated_by"].strip(), lang
    for lang in NEW:
        assert recorded[lang]["reviewed_by_native_speaker"] is False, lang


def test_readme_and_docs_list_every_language_and_its_review_status():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    docs = (PROJECT_ROOT / "docs" / "web.md").read_text(encoding="utf-8")
    recorded = status()
    # The README's paragraph that starts "Languages of the page:", as one line.
    start = readme.index("Languages of the page:")
    line = " ".join(readme[start:readme.index("\n\n", start)].split())
    for lang in LANGUAGES:
        reviewed = "reviewed" if recorded[lang]["reviewed_by_native_speaker"] else "not reviewed"
        assert f"{recorded[lang]['name']} ({lang}, {reviewed}" in line, lang
        row = [r for r in docs.splitlines() if r.startswith(f"| `{lang}` |")]
        assert len(row) == 1, lang
        assert ("| yes |" if recorded[lang]["reviewed_by_native_speaker"] else "| no |") in row[0]


# (the browser's preference list or ?lang=, what the page chooses)
CHOICES = [
    ("", ["ja-JP", "ja", "en-US"], "ja"),
    ("", ["en-GB"], "en"),
    ("", ["zh-CN", "zh"], "zh-Hans"),
    ("", ["zh-SG"], "zh-Hans"),
    ("", ["zh"], "zh-Hans"),
    ("", ["zh-Hans-JP"], "zh-Hans"),
    ("", ["zh_CN"], "zh-Hans"),
    ("", ["zh-TW", "en-US"], "en"),  # Traditional: not offered, so the next preference
    ("", ["zh-Hant-HK", "ja"], "ja"),
    ("", ["ko-KR", "ko"], "ko"),
    ("", ["vi-VN"], "vi"),
    ("", ["fil-PH", "en-US"], "tl"),
    ("", ["fil"], "tl"),
    ("", ["tl"], "tl"),
    ("", ["pt-BR"], "pt-BR"),
    ("", ["pt"], "pt-BR"),
    ("", ["pt-PT", "en"], "pt-BR"),
    ("", ["ne-NP"], "ne"),
    ("", ["ne"], "ne"),
    ("", ["de-DE", "fr"], "en"),  # nothing offered: English
    ("", ["de-DE", "vi"], "vi"),
    ("", [], "en"),
    ("?lang=ne", ["ja-JP"], "ne"),  # the person's own choice in this tab wins
    ("?lang=PT-br", ["ja-JP"], "pt-BR"),
    ("?lang=zh-CN", ["en"], "zh-Hans"),
    ("?lang=xx", ["ko"], "ko"),  # a nonsense parameter is ignored
    ("?lang=", ["vi"], "vi"),
]


def test_language_follows_the_browser_preferences():
    chosen = choose([(search, langs) for search, langs, _ in CHOICES])
    wrong = [(search, langs, want, got)
             for (search, langs, want), got in zip(CHOICES, chosen) if want != got]
    assert wrong == []

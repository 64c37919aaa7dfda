"""The CLI's eight languages (issue 18): every catalogue has every string English has, with the
same {fields}; the sentences the page says too are the page's own; the language comes from
`--lang` or the locale as a person's system sets it; a string a language lacks is shown in
English, never as a key; the language's own yes and no are answers; and the review status of the
CLI's translations is on record. (In a real terminal: tests/test_cli_terminal.py.)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hashing import i18n
from hashing.cli import app
from tests.helpers import FAKE_REF, FAKE_TOKEN, RecordingServer
from tests.testdata import PDQ_DIR, require_testdata

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("hashguard")
CATALOGUES = ROOT / "hashing" / "i18n"
WEB_I18N = ROOT / "web" / "i18n"
LANGUAGES = ["ja", "en", "zh-Hans", "ko", "vi", "tl", "pt-BR", "ne"]
TRANSLATIONS = [lang for lang in LANGUAGES if lang != "en"]
FIELD = re.compile(r"\{(\w+)\}")
LOANWORDS = {"tl": ["status.other"]}


def load(lang: str) -> dict[str, object]:
    return i18n.flat(json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8")))


def page(lang: str) -> dict[str, object]:
    return i18n.flat(json.loads((WEB_I18N / f"{lang}.json").read_text(encoding="utf-8")))


def test_the_cli_offers_the_pages_languages_and_no_other_catalogue():
    assert list(i18n.LANGUAGES) == LANGUAGES
    assert {p.stem for p in CATALOGUES.glob("*.json")} == set(LANGUAGES)
    offered = {p.stem for p in WEB_I18N.glob("*.json")} - {"status"}
    assert offered == set(LANGUAGES)


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_every_key_of_english_and_no_other(lang):
    english, translated = load("en"), load(lang)
    assert sorted(set(english) - set(translated)) == [], f"{lang} lacks these keys"
    # A language may have a "_one" form English does not need (Portuguese verbs agree).
    extra = [k for k in set(translated) - set(english)
             if not (k.endswith("_one") and k[:-4] in english)]
    assert extra == [], f"{lang} has keys English does not"
    for key, value in english.items():
        assert type(translated[key]) is type(value), (lang, key)


@pytest.mark.parametrize("lang", TRANSLATIONS)
def test_fields_match_english_and_nothing_is_left_in_english(lang):
    english, translated = load("en"), load(lang)
    for key, text in translated.items():
        reference = english.get(key) or english[key[:-4]]
        if isinstance(text, list):
            assert text and all(isinstance(w, str) and w.strip() for w in text), (lang, key)
            continue
        assert text.strip(), (lang, key, "empty")
        assert sorted(FIELD.findall(text)) == sorted(FIELD.findall(reference)), (lang, key)
    # Sentences, not copies of the English (separators and bare templates may be the same, and
    # loanwords: Tagalog says "Status").
    same = [k for k, v in english.items() if isinstance(v, str) and translated[k] == v
            and re.search(r"[A-Za-z]{3}", FIELD.sub("", v))]
    assert same == LOANWORDS.get(lang, []), (lang, same)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_sentences_the_page_says_too_are_the_pages_own(lang):
    ours, theirs = load(lang), page(lang)
    shared = {k[len("from_page."):]: v for k, v in ours.items() if k.startswith("from_page.")}
    assert shared, lang
    for key, text in shared.items():
        assert text == theirs[key], (lang, key)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_yes_and_no_in_the_language_and_in_y_n(lang):
    words = i18n.Words(lang)
    own_yes, own_no = load(lang)["answer.yes"][0], load(lang)["answer.no"][0]
    assert words.answer(own_yes) is True and words.answer(own_no) is False
    for typed, meant in [("y", True), ("YES", True), (" n ", False), ("no", False),
                         ("", False), ("ｙ", True), ("perhaps", None)]:
        assert words.answer(typed) is meant, (lang, typed)
    assert load(lang)["answer.hint"].endswith("[y/N]")


def test_japanese_answers_as_people_type_them():
    words = i18n.Words("ja")
    assert words.answer("はい") is True and words.answer("はい。") is True
    assert words.answer("いいえ") is False and words.answer("ｎ") is False


# (LC_ALL, LC_MESSAGES, LANG) -> the language chosen
LOCALES = [
    (("", "", "ja_JP.UTF-8"), "ja"),
    (("", "", "ja_JP.eucJP"), "ja"),
    (("", "", "en_US.UTF-8"), "en"),
    (("", "", "zh_CN.UTF-8"), "zh-Hans"),
    (("", "", "zh_SG.GB2312"), "zh-Hans"),
    (("", "", "zh_TW.UTF-8"), "en"),  # Traditional Chinese is not offered: English
    (("", "", "zh_HK.UTF-8"), "en"),
    (("", "", "ko_KR.UTF-8"), "ko"),
    (("", "", "vi_VN"), "vi"),
    (("", "", "fil_PH.UTF-8"), "tl"),
    (("", "", "tl_PH.UTF-8"), "tl"),
    (("", "", "pt_BR.UTF-8"), "pt-BR"),
    (("", "", "pt_PT.UTF-8"), "pt-BR"),
    (("", "", "ne_NP.UTF-8"), "ne"),
    (("", "", "de_DE.UTF-8"), "en"),
    (("", "", "C.UTF-8"), "en"),
    (("", "", ""), "en"),
    (("", "ko_KR.UTF-8", "ja_JP.UTF-8"), "ko"),  # LC_MESSAGES before LANG
    (("C", "ko_KR.UTF-8", "ja_JP.UTF-8"), "en"),  # LC_ALL before both, even C
    (("vi_VN.UTF-8", "", "ja_JP.UTF-8"), "vi"),
]


@pytest.mark.parametrize("variables,want", LOCALES)
def test_language_from_the_locale(variables, want):
    environ = dict(zip(("LC_ALL", "LC_MESSAGES", "LANG"), variables))
    assert i18n.from_environment(environ) == want


@pytest.mark.parametrize("given,want", [("ja", "ja"), ("JA", "ja"), ("zh-CN", "zh-Hans"),
                                        ("zh_Hans", "zh-Hans"), ("PT-br", "pt-BR"),
                                        ("fil", "tl"), ("ne_NP.UTF-8", "ne"), ("xx", None),
                                        ("zh-TW", None)])
def test_lang_option_spellings(given, want):
    assert i18n.parse(given) == want


def test_a_missing_string_falls_back_to_english_never_to_a_key(tmp_path, monkeypatch):
    """A catalogue that lost a string (a translation in progress) shows the English sentence."""
    for lang in LANGUAGES:
        shutil.copy(CATALOGUES / f"{lang}.json", tmp_path / f"{lang}.json")
    partial = json.loads((tmp_path / "ja.json").read_text(encoding="utf-8"))
    del partial["case"]["warning"], partial["withdraw"]["declined"]
    partial["files"]["nothing_sent"] = ""  # an empty string is missing too
    (tmp_path / "ja.json").write_text(json.dumps(partial, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(i18n, "_HERE", tmp_path)
    i18n.catalogue.cache_clear()
    try:
        words, english = i18n.Words("ja"), i18n.Words("en")
        assert words.t("case.warning") == english.t("case.warning")
        assert words.t("withdraw.declined", ref="HG-1") == "Not withdrawn: case HG-1 is unchanged."
        assert words.t("files.nothing_sent") == "Nothing was sent."
        assert words.t("case.title") == "ケースを作りました"  # the rest stays Japanese
    finally:
        i18n.catalogue.cache_clear()


def test_an_unknown_lang_is_a_clear_usage_error():
    result = CliRunner().invoke(app, ["status", "--lang", "xx", "HG-TEST-0001"])
    assert result.exit_code == 2
    assert "xx" in result.output and "zh-Hans" in result.output
    assert "Traceback" not in result.output


def test_status_json_records_the_clis_review_status():
    recorded = json.loads((WEB_I18N / "status.json").read_text(encoding="utf-8"))
    for lang in LANGUAGES:
        assert recorded[lang]["cli_reviewed_by_native_speaker"] is False, lang
        assert recorded[lang]["cli_translated_by"].strip(), lang
    for lang in TRANSLATIONS:
        assert "machine-assisted" in recorded[lang]["cli_translated_by"], lang


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("HASHGUARD_TOKEN", "LC_ALL", "LC_MESSAGES", "LANG")}
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=120,
                          env={**base, **env}, stdin=subprocess.DEVNULL)


def test_hash_speaks_japanese_but_its_json_does_not(tmp_path):
    require_testdata()
    photo = PDQ_DIR / "misc-images" / "c.png"
    missing = tmp_path / "nosuch.jpg"
    japanese = _run("hash", str(missing), LANG="ja_JP.UTF-8")
    assert japanese.returncode == 1
    assert f"エラー: {missing}: ファイルやフォルダーがありません" in japanese.stderr
    english = _run("hash", "--json", str(photo), LANG="C.UTF-8")
    assert _run("hash", "--json", "--lang", "ja", str(photo)).stdout == english.stdout
    assert json.loads(english.stdout)["signal_type"] == "pdq"


@pytest.mark.parametrize("lang,locale", [("ko", "ko_KR.UTF-8"), ("vi", "vi_VN.UTF-8")])
def test_a_server_refusal_in_the_pages_words_with_its_code(lang, locale):
    """A refusal the page explains is explained with the page's sentence; the code stays."""
    server = RecordingServer()
    server.responder = lambda request: (429, {"error": {"code": "rate_limited",
                                                        "message": "slow down"}})
    try:
        out = _run("status", "--server", server.url, FAKE_REF, HASHGUARD_TOKEN=FAKE_TOKEN,
                   LANG=locale)
    finally:
        server.close()
    assert out.returncode == 1
    sentence = page(lang)["errors.rate_limited"]
    assert sentence in out.stderr and "(rate_limited)" in out.stderr, out.stderr
    assert load(lang)["label.error"] in out.stderr
    assert "Traceback" not in out.stderr and FAKE_TOKEN not in out.stderr


def test_withdraw_declined_in_nepali_is_calm():
    server = RecordingServer()
    try:
        out = subprocess.run(
            [str(EXE), "withdraw", "--lang", "ne", "--server", server.url, FAKE_REF],
            input="होइन\n", capture_output=True, text=True, timeout=120,
            env={**{k: v for k, v in os.environ.items() if k != "LANG"},
                 "HASHGUARD_TOKEN": FAKE_TOKEN})
    finally:
        server.close()
    assert out.returncode == 0, out.stderr
    assert server.requests == []
    assert f"फिर्ता लिइएन: केस {FAKE_REF} जस्ताको तस्तै छ।" in out.stderr
    assert "हो/होइन [y/N]" in out.stderr

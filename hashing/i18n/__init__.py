"""What the `hashguard` CLI says to a person, in the page's eight languages (issue 18).

The language: `--lang`, else the locale (LC_ALL, LC_MESSAGES, LANG: ja_JP.UTF-8 is ja, zh_CN is
zh-Hans, any pt_* is pt-BR, fil is tl), else English. English is the reference text and the
fallback for every string a language lacks (never a key name).

Format: one JSON catalogue per language here (<lang>.json), not gettext's compiled .mo files. The
page's texts are JSON (web/i18n/<lang>.json) and the CLI copies the page's sentences where both say
the same thing (the "from_page" section, keyed by the page's own key, which a test compares with
the page); JSON loads with the standard library, needs no compile step whose output would have to
be kept in step with its source, and takes the same every-key test as the page's files. Machine
output (`--json`, the `case_ref:` / `status:` lines, server error codes) is never translated.
"""
from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Mapping
from functools import cache
from pathlib import Path

LANGUAGES = ("ja", "en", "zh-Hans", "ko", "vi", "tl", "pt-BR", "ne")
ENGLISH = "en"
_HERE = Path(__file__).resolve().parent
# Locale or --lang spellings of the languages offered (lower case, "-" for "_").
_ALIASES = {"fil": "tl", "zh-cn": "zh-Hans", "zh-sg": "zh-Hans", "zh-hans": "zh-Hans",
            "zh-my": "zh-Hans"}
# Chinese written in Traditional characters is not offered: English, not the wrong script.
_TRADITIONAL = ("zh-tw", "zh-hk", "zh-mo", "zh-hant")


def parse(tag: str | None) -> str | None:
    """The offered language a locale name or language tag means ("ja_JP.UTF-8", "PT-br",
    "zh-Hans-JP", "fil_PH"), or None (C, POSIX, a language not offered)."""
    if not tag:
        return None
    tag = tag.split(".")[0].split("@")[0].replace("_", "-").strip().lower()
    if not tag or tag in ("c", "posix"):
        return None
    if any(tag == t or tag.startswith(t + "-") for t in _TRADITIONAL):
        return None
    for alias, lang in _ALIASES.items():
        if tag == alias or tag.startswith(alias + "-"):
            return lang
    base = tag.split("-")[0]
    if base == "zh":
        return "zh-Hans"
    if base == "pt":
        return "pt-BR"
    if base == "fil":
        return "tl"
    return base if base in LANGUAGES else None


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language of the person's locale, as POSIX ranks its variables: the first one set
    decides (LC_ALL=C means English even when LANG=ja_JP.UTF-8)."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "").strip()
        if value:
            return parse(value) or ENGLISH
    return ENGLISH


def flat(node, prefix: str = "") -> dict[str, object]:
    """{"case.warning": "...", ...}: every leaf of a catalogue under its dotted key."""
    if isinstance(node, dict):
        out: dict[str, object] = {}
        for key, value in node.items():
            if not key.startswith("_"):
                out.update(flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


@cache
def catalogue(lang: str) -> dict[str, object]:
    # "from_page" keys are the page's own ("errors.network"): kept under that prefix.
    raw = json.loads((_HERE / f"{lang}.json").read_text(encoding="utf-8"))
    return flat(raw)


class Words:
    """One language's strings; `t("case.warning")`, falling back to English string by string."""

    def __init__(self, lang: str = ENGLISH):
        if lang not in LANGUAGES:
            raise ValueError(f"not an offered language: {lang!r}")
        self.lang = lang

    def _chain(self):
        return (self.lang, ENGLISH) if self.lang != ENGLISH else (ENGLISH,)

    def t(self, key: str, count: int | None = None, **fields) -> str:
        """The text of `key` with its {fields} filled in; `count` picks the "_one" form where a
        language has one (English "1 platform", "2 platforms") and fills {count}."""
        if count is not None:
            fields["count"] = count
        for lang in self._chain():
            strings = catalogue(lang)
            for name in ([f"{key}_one"] if count == 1 else []) + [key]:
                text = strings.get(name)
                if isinstance(text, str) and text.strip():
                    try:
                        return text.format(**fields)
                    except (KeyError, IndexError, ValueError):
                        break  # a broken translation: the English sentence instead
        raise KeyError(f"no English text for {key!r}")

    def page(self, key: str, **fields) -> str:
        """A sentence the page says too (web/i18n/<lang>.json's `key`)."""
        return self.t(f"from_page.{key}", **fields)

    def has_page(self, key: str) -> bool:
        return f"from_page.{key}" in catalogue(ENGLISH)

    def answer(self, typed: str) -> bool | None:
        """True for yes, False for no (and for just Enter: the question's default), None when the
        answer is neither. y/yes and n/no work in every language, and so do the language's own
        words (はい/いいえ, 예/아니요, sim/não, ...), full-width or not."""
        text = unicodedata.normalize("NFKC", typed).strip().casefold().rstrip("。.!！、,")
        if not text:
            return False
        for value, key in ((True, "answer.yes"), (False, "answer.no")):
            words = set()
            for lang in self._chain():
                words.update(unicodedata.normalize("NFKC", w).casefold()
                             for w in catalogue(lang).get(key) or [])
            if text in words:
                return value
        return None

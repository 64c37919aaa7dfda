"""Every string the page shows comes from web/i18n/<lang>.json, and every file says everything.
(The eight languages, placeholders and review status: test_i18n_languages.py.)"""
from __future__ import annotations

import json
import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
LANGUAGES = sorted(p.stem for p in (WEB / "i18n").glob("*.json") if p.stem != "status")


def _load(lang: str) -> dict:
    return json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def _keys(node, prefix="") -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_keys(v, f"{prefix}{k}.") for k, v in node.items()))
    return {prefix.rstrip(".")}


def _lookup(strings: dict, key: str):
    node = strings
    for part in key.split("."):
        node = node[part]
    return node


def test_both_languages_have_the_same_keys():
    assert _keys(_load("ja")) == _keys(_load("en"))


def test_every_key_the_page_uses_exists():
    html = (WEB / "index.html").read_text(encoding="utf-8")
    used = set(re.findall(r'data-i18n="([\w.]+)"', html))
    used |= {key for pairs in re.findall(r'data-i18n-attr="([^"]+)"', html)
             for key in re.findall(r":([\w.]+)", pairs)}
    for script in (WEB / "js").glob("*.js"):
        source = script.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bi18n\.(?:t|raw)\('([\w.]+)'", source))
    assert len(used) > 60
    assert {"ja", "en"} <= set(LANGUAGES)
    for lang in LANGUAGES:
        strings = _load(lang)
        missing = [key for key in sorted(used) if not _has(strings, key)]
        assert missing == [], (lang, missing)


def _has(strings: dict, key: str) -> bool:
    try:
        _lookup(strings, key)
        return True
    except (KeyError, TypeError):
        return False


def test_dynamic_keys_exist_for_every_value():
    """Keys built at run time: signal types, API error codes, pathways, report kinds, problems."""
    for lang in LANGUAGES:
        s = _load(lang)
        for signal in ("pdq", "video_md5", "video_sha256"):
            assert s["signal"][signal]
        for code in ("network", "case_not_found", "rate_limited", "generic"):
            assert s["errors"][code]
        for pathway in ("adult", "under18_at_capture"):
            assert s["common"][f"pathway_{pathway}"]
        for report in ("pulled", "matched", "removed", "blocked", "not_violating"):
            assert s["status"][report]
        for problem in ("low_quality", "degenerate", "unreadable", "not_media"):
            assert s["files"][problem]
        for state in ("active", "withdrawn"):
            assert s["status"][f"state_{state}"]


def test_no_text_baked_into_the_scripts():
    """Scripts set text only through i18n.t: no literal prose in textContent assignments."""
    for script in (WEB / "js").glob("*.js"):
        source = script.read_text(encoding="utf-8")
        assert not re.search(r"textContent\s*=\s*['\"`][A-Za-z\u3040-\u30ff\u4e00-\u9fff]", source), script
        assert not re.search(r"text:\s*['\"][A-Za-z\u3040-\u30ff\u4e00-\u9fff]{3,}", source), script

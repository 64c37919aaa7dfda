"""The operator's web/support.json (Quick exit target, the support lines of the country or
countries the service runs for), validated when the service starts: a mistake stops the start
with one clear message instead of showing a frightened person a page with no one to call.
Mirrors web/js/support.js, which the page runs too.

Placeholder lines ("placeholder: operator to fill in") stop the start as well: the English page
once listed four of them, on the crisis screen too, and the server started without a word. A
demo or test deployment says so with HASHGUARD_SUPPORT_DEMO=1 (read here, not in
api/settings.py, because only this check uses it).

Lines marked `"review"` (a number not taken from a checked source) are logged at start, so the
operator confirms them; they do not stop the start.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

REQUIRED_LOCALES = ("ja", "en")  # the older per-language form's required lists
FALLBACK_LANGUAGE = "en"
DEMO_ENV = "HASHGUARD_SUPPORT_DEMO"
_NUMBER = re.compile(r"[0-9#+\-() ]*")
_COUNTRY = re.compile(r"[A-Z]{2}")
_HTTPS = re.compile(r"https://\S+")
_PLACEHOLDER = re.compile(r"placeholder|operator to fill in", re.IGNORECASE)

log = logging.getLogger("hashguard.support")


class SupportConfigError(ValueError):
    pass


def _is_text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _texts(found: list[str], where: str, texts) -> None:
    if not isinstance(texts, dict):
        found.append(f'{where} must be an object of texts by language ({{"en": "..."}})')
        return
    if not _is_text(texts.get(FALLBACK_LANGUAGE)):
        found.append(f"{where}.{FALLBACK_LANGUAGE} must be a non-empty string (the fallback text)")
    for lang, text in texts.items():
        if not isinstance(text, str):
            found.append(f"{where}.{lang} must be a string")


def _countries(found: list[str], countries) -> None:
    if not isinstance(countries, list) or not countries:
        found.append("countries must be a non-empty list")
        return
    for c, country in enumerate(countries):
        where = f"countries[{c}]"
        if not isinstance(country, dict):
            found.append(f"{where} must be an object")
            continue
        if not isinstance(country.get("code"), str) or not _COUNTRY.fullmatch(country["code"]):
            found.append(f'{where}.code must be a two-letter country code ("JP")')
        _texts(found, f"{where}.name", country.get("name"))
        lines = country.get("lines")
        if not isinstance(lines, list) or not lines:
            found.append(f"{where}.lines must be a non-empty list")
            continue
        for i, line in enumerate(lines):
            at = f"{where}.lines[{i}]"
            if not isinstance(line, dict):
                found.append(f"{at} must be an object")
                continue
            number = line.get("number")
            if not _is_text(number) or not _NUMBER.fullmatch(number):
                found.append(f"{at}.number must be a phone number (digits, #, +, -, spaces)")
            _texts(found, f"{at}.label", line.get("label"))
            _texts(found, f"{at}.description", line.get("description"))


def _locales(found: list[str], locales) -> None:
    if not isinstance(locales, dict):
        found.append("locales must be an object with one entry per language")
        return
    for lang in REQUIRED_LOCALES:
        entry = locales.get(lang)
        if not isinstance(entry, dict):
            found.append(f"locales.{lang} is missing")
            continue
        if "note" in entry and not isinstance(entry["note"], str):
            found.append(f"locales.{lang}.note must be a string")
        items = entry.get("items")
        if not isinstance(items, list) or not items:
            found.append(f"locales.{lang}.items must be a non-empty list")
            continue
        for i, item in enumerate(items):
            where = f"locales.{lang}.items[{i}]"
            if not isinstance(item, dict):
                found.append(f"{where} must be an object")
                continue
            if not _is_text(item.get("name")):
                found.append(f"{where}.name must be a non-empty string")
            if not isinstance(item.get("number"), str) or not _NUMBER.fullmatch(item["number"]):
                found.append(f'{where}.number must be a phone number (digits, #, +, -, spaces) or ""')
            if "note" in item and not isinstance(item["note"], str):
                found.append(f"{where}.note must be a string")


def problems(config) -> list[str]:
    if not isinstance(config, dict):
        return ["support.json must be a JSON object"]
    found: list[str] = []
    exit_url = config.get("quick_exit_url")
    if not (exit_url == "about:blank" or isinstance(exit_url, str) and _HTTPS.fullmatch(exit_url)):
        found.append('quick_exit_url must be "about:blank" or an https:// address')
    if "countries" in config or "locales" not in config:
        _countries(found, config.get("countries"))
    else:
        _locales(found, config["locales"])
    return found


def placeholder_lines(config) -> list[str]:
    """Where the file still holds a line the operator was meant to replace."""
    found = []
    if isinstance(config.get("countries"), list):
        for c, country in enumerate(config["countries"]):
            for i, line in enumerate(country.get("lines") or []):
                texts = [*(line.get("label") or {}).values(), *(line.get("description") or {}).values()]
                if line.get("placeholder") is True or any(_PLACEHOLDER.search(str(t)) for t in texts):
                    found.append(f"countries[{c}].lines[{i}]")
    elif isinstance(config.get("locales"), dict):
        for lang, entry in config["locales"].items():
            for i, item in enumerate(entry.get("items") or []):
                if _PLACEHOLDER.search(f"{item.get('name', '')} {item.get('note', '')}"):
                    found.append(f"locales.{lang}.items[{i}]")
    return found


def lines_to_review(config) -> list[str]:
    """Lines the file marks for the operator to confirm (a number from no checked source)."""
    return [f"countries[{c}].lines[{i}] ({line.get('number')}): {line['review']}"
            for c, country in enumerate(config.get("countries") or [])
            for i, line in enumerate(country.get("lines") or [])
            if isinstance(line, dict) and line.get("review")]


def demo_allowed() -> bool:
    return os.environ.get(DEMO_ENV, "").strip().lower() in ("1", "true", "yes")


def check_file(path: Path) -> None:
    """Raise SupportConfigError naming every problem in the file."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as unreadable:
        raise SupportConfigError(f"{path}: cannot read it as JSON: {unreadable}") from None
    found = problems(config)
    if found:
        raise SupportConfigError(f"{path} is invalid: " + "; ".join(found))
    placeholders = placeholder_lines(config)
    if placeholders and not demo_allowed():
        raise SupportConfigError(
            f"{path} still lists placeholder support lines ({', '.join(placeholders)}): a person "
            "in crisis would find no one to call. Put in the real lines of the country this "
            f"service runs for, or set {DEMO_ENV}=1 for a demo or test deployment")
    if placeholders:
        log.warning("support.json lists placeholder support lines (%s=1: demo)", DEMO_ENV)
    for line in lines_to_review(config):
        log.warning("support.json: confirm this support line before going live: %s", line)

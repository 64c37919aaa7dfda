"""The operator's web/support.json (Quick exit target, support services per language), validated
when the service starts: a mistake stops the start with one clear message instead of showing a
frightened person a page with no one to call. Mirrors web/js/support.js, which the page runs too.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

REQUIRED_LOCALES = ("ja", "en")
_NUMBER = re.compile(r"[0-9#+\-() ]*")
_HTTPS = re.compile(r"https://\S+")


class SupportConfigError(ValueError):
    pass


def problems(config) -> list[str]:
    if not isinstance(config, dict):
        return ["support.json must be a JSON object"]
    found = []
    exit_url = config.get("quick_exit_url")
    if not (exit_url == "about:blank" or isinstance(exit_url, str) and _HTTPS.fullmatch(exit_url)):
        found.append('quick_exit_url must be "about:blank" or an https:// address')
    locales = config.get("locales")
    if not isinstance(locales, dict):
        return found + ["locales must be an object with one entry per language"]
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
            if not isinstance(item.get("name"), str) or not item["name"].strip():
                found.append(f"{where}.name must be a non-empty string")
            if not isinstance(item.get("number"), str) or not _NUMBER.fullmatch(item["number"]):
                found.append(f'{where}.number must be a phone number (digits, #, +, -, spaces) or ""')
            if "note" in item and not isinstance(item["note"], str):
                found.append(f"{where}.note must be a string")
    return found


def check_file(path: Path) -> None:
    """Raise SupportConfigError naming every problem in the file."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as unreadable:
        raise SupportConfigError(f"{path}: cannot read it as JSON: {unreadable}") from None
    found = problems(config)
    if found:
        raise SupportConfigError(f"{path} is invalid: " + "; ".join(found))

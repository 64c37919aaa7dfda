"""The page's token and support-list rules under Node (web/js/token.js, web/js/support.js),
issue 18: a token of either shape is accepted as a person types it, and the support lines follow
the service's country with each line's text in the page's language, else English."""
from __future__ import annotations

import json
import subprocess

from tests.web.helpers import PROJECT_ROOT, WEB, node_available

OLD = "mKZ_H2PpEIzG8vG-abcdefghijklmnopqrstuvwxyz0"  # 43 characters of base64url, case matters
NEW = "7K3M-Q9XD-ABCD-EFGH-JKMN-PQRS-TVWX-YZ23"


def run(tokens=(), configs=()):
    done = subprocess.run([node_available(), str(PROJECT_ROOT / "tests/web/page_units.mjs"),
                           json.dumps({"tokens": list(tokens), "configs": list(configs)})],
                          cwd=PROJECT_ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def shipped() -> dict:
    return json.loads((WEB / "support.json").read_text(encoding="utf-8"))


def test_tokens_of_either_shape_as_typed():
    assert len(OLD) == 43
    typed = [OLD, f"  {OLD}\n", NEW, NEW.lower(), NEW.replace("-", ""), NEW.replace("-", " "),
             f" {NEW.lower().replace('-', '')} "]
    result = run(tokens=typed)
    assert result["tokens"] == [OLD, OLD] + [NEW] * 5
    # An old token is never changed (its case matters) and is one piece (it wraps anywhere);
    # a new one wraps only between its groups.
    assert result["pieces"][0] == [OLD]
    assert result["pieces"][2] == [g + "-" for g in NEW.split("-")[:-1]] + [NEW.split("-")[-1]]


def test_a_token_typed_on_a_japanese_keyboard_is_folded_to_what_was_issued():
    """Full-width letters and a long-vowel mark for the dash (IME input) become the token; the
    old code sent them as typed, which fetch refuses in a header (not Latin-1)."""
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else "\u30fc" for c in NEW)
    typed = [full_width, full_width.replace("\u30fc", "\u2212"), "\u3000" + NEW + "\u3000"]
    result = run(tokens=typed)
    assert result["tokens"] == [NEW] * 3
    assert all(t.isascii() for t in run(tokens=["トークン"])["tokens"])


def test_support_lines_follow_the_country_not_the_language():
    config = shipped()
    # The same lines with the Korean texts taken out: what a language without its own text gets.
    no_korean = json.loads(json.dumps(config))
    for country in no_korean["countries"]:
        country["name"].pop("ko", None)
        for line in country["lines"]:
            for field in ("label", "description"):
                line[field].pop("ko", None)
    result = run(configs=[[config, "ja"], [config, "en"], [config, "ko"], [no_korean, "ko"]])
    ja, en, ko, ko_fallback = result["sections"]
    assert result["problems"] == [[]] * 4 and result["placeholders"] == [[]] * 4
    numbers = [line["number"] for line in en[0]["lines"]]
    # Japan's lines on the English page too (a foreign resident reading English), and a line
    # for children; the seed report's five numbers first.
    assert numbers[:5] == ["#9110", "#8103", "#8891", "0120-279-338", "0570-064-556"]
    assert "0120-0-78310" in numbers
    assert en[0]["country"] == "Japan" and ja[0]["country"] == "日本"
    assert en[0]["lines"][0]["label"] == "Police consultation line"
    assert ja[0]["lines"][0]["label"] == "警察相談専用電話"
    # Korean has its own texts for the same numbers (machine-assisted, marked not reviewed).
    assert [line["number"] for line in ko[0]["lines"]] == numbers
    assert ko[0]["country"] == "일본" and ko[0]["lines"][0]["label"] == "경찰 상담 전용 전화"
    # A language without its own text gets English, never an empty line or a key.
    assert ko_fallback == en
    for line in en[0]["lines"] + ja[0]["lines"]:
        assert line["label"].strip() and line["description"].strip()


def test_old_form_still_loads_and_placeholders_are_found():
    old = {"quick_exit_url": "about:blank", "locales": {
        "ja": {"items": [{"name": "警察相談専用電話", "number": "#9110", "note": "x"}]},
        "en": {"note": "", "items": [
            {"name": "Emergency services (placeholder: operator to fill in)", "number": ""}]}}}
    broken = {"quick_exit_url": "about:blank", "countries": [{"code": "jp", "name": {"ja": "日本"},
              "lines": [{"number": "call me", "label": {"ja": "x"}, "description": {"en": ""}}]}]}
    result = run(configs=[[old, "ja"], [old, "ko"], [broken, "en"]])
    assert result["problems"][:2] == [[], []]
    assert result["sections"][0][0]["lines"][0]["label"] == "警察相談専用電話"
    assert result["sections"][1][0]["lines"][0]["number"] == ""  # English list for others
    assert result["placeholders"][0] == ["locales.en.items[0]"]
    problems = " | ".join(result["problems"][2])
    for part in ["countries[0].code", "countries[0].name.en", "lines[0].number",
                 "lines[0].label.en", "lines[0].description.en"]:
        assert part in problems

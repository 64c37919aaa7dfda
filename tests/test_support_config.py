"""The operator's support list (web/support.json) is checked at start-up, with a clear error.

Issue 18: the server started without a word while the English page listed four "(placeholder:
operator to fill in)" rows, on the crisis screen too. Now it refuses to start with a placeholder
line unless the operator says the deployment is a demo (HASHGUARD_SUPPORT_DEMO=1)."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from api import app as app_module
from api.app import create_app
from api.settings import Settings
from api.support_config import DEMO_ENV, SupportConfigError, check_file, problems

SEED_NUMBERS = ["#9110", "#8103", "#8891", "0120-279-338", "0570-064-556"]
OLD_FORM_WITH_PLACEHOLDERS = {"quick_exit_url": "about:blank", "locales": {
    "ja": {"note": "", "items": [{"name": "警察相談専用電話", "number": "#9110", "note": "x"}]},
    "en": {"note": "Placeholder list", "items": [
        {"name": "Emergency services (placeholder: operator to fill in)", "number": ""}]}}}


SHIPPED = app_module.WEB_DIR / "support.json"


def shipped() -> dict:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))


def test_the_shipped_file_is_valid_and_lists_japan_in_japanese_and_english(monkeypatch):
    monkeypatch.delenv(DEMO_ENV, raising=False)
    check_file(SHIPPED)
    [japan] = shipped()["countries"]
    assert japan["code"] == "JP"
    numbers = [line["number"] for line in japan["lines"]]
    assert numbers[:5] == SEED_NUMBERS  # from the seed report's list
    assert "0120-0-78310" in numbers  # a line for children
    for line in japan["lines"]:
        for field in ("label", "description"):
            assert line[field]["ja"].strip() and line[field]["en"].strip(), line
        # A number not in the seed report is marked for the operator to confirm.
        assert line["number"] in SEED_NUMBERS or line.get("review"), line


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c.update(quick_exit_url="http://example.com"), "quick_exit_url"),
    (lambda c: c.pop("countries"), "countries must be a non-empty list"),
    (lambda c: c["countries"][0].update(code="Japan"), "countries[0].code"),
    (lambda c: c["countries"][0].update(lines=[]), "countries[0].lines"),
    (lambda c: c["countries"][0]["lines"][0].update(number="call me"), "number"),
    (lambda c: c["countries"][0]["lines"][0].update(number=""), "number"),
    (lambda c: c["countries"][0]["lines"][0]["label"].pop("en"), "label.en"),
    (lambda c: c["countries"][0]["lines"][0]["description"].update(en=" "), "description.en"),
])
def test_each_mistake_is_named(mutate, message):
    config = shipped()
    mutate(config)
    assert any(message in p for p in problems(config)), problems(config)


def _web_with(tmp_path, monkeypatch, config) -> None:
    web = tmp_path / "web"
    shutil.copytree(app_module.WEB_DIR, web)
    (web / "support.json").write_text(config if isinstance(config, str) else json.dumps(config))
    monkeypatch.setattr(app_module, "WEB_DIR", web)


def _start(tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/db.sqlite", data_dir=tmp_path))
    app.state.database.dispose()


def test_the_service_refuses_to_start_with_a_broken_file(tmp_path, monkeypatch):
    _web_with(tmp_path, monkeypatch, '{"quick_exit_url": "about:blank", "locales": {}')
    with pytest.raises(SupportConfigError, match="cannot read it as JSON"):
        _start(tmp_path)


def test_the_service_refuses_to_start_with_placeholder_lines(tmp_path, monkeypatch):
    monkeypatch.delenv(DEMO_ENV, raising=False)
    _web_with(tmp_path, monkeypatch, OLD_FORM_WITH_PLACEHOLDERS)
    with pytest.raises(SupportConfigError, match=f"placeholder support lines.*{DEMO_ENV}=1"):
        _start(tmp_path)
    config = shipped()
    config["countries"][0]["lines"][1]["placeholder"] = True
    _web_with(tmp_path / "new", monkeypatch, config)
    with pytest.raises(SupportConfigError, match=r"countries\[0\]\.lines\[1\]"):
        _start(tmp_path)


def test_hashguard_serve_refuses_in_one_line_not_a_traceback(tmp_path, monkeypatch):
    _web_with(tmp_path, monkeypatch, OLD_FORM_WITH_PLACEHOLDERS)
    env = {k: v for k, v in os.environ.items() if k != DEMO_ENV}
    env.update(HASHGUARD_WEB_DIR=str(tmp_path / "web"), HASHGUARD_DATA_DIR=str(tmp_path),
               HASHGUARD_DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite")
    done = subprocess.run([sys.executable, "-c", "from hashing.cli import main; main()", "serve",
                           "--port", "0"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "placeholder support lines" in done.stderr and DEMO_ENV in done.stderr


def test_a_demo_starts_with_placeholders_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(DEMO_ENV, "1")
    _web_with(tmp_path, monkeypatch, OLD_FORM_WITH_PLACEHOLDERS)  # the older form still loads
    with caplog.at_level(logging.WARNING, logger="hashguard.support"):
        check_file(app_module.WEB_DIR / "support.json")
    assert "placeholder" in caplog.text
    _start(tmp_path)


def test_lines_to_review_are_logged_at_start(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(DEMO_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="hashguard.support"):
        check_file(SHIPPED)
    assert "0120-0-78310" in caplog.text


def test_every_line_has_its_own_text_in_every_language_of_the_page():
    """Issue 18: Japan's lines were in Japanese and English only, so a Vietnamese or Nepali reader
    got English. Each of the page's languages now has its own label and description for every
    line (Tagalog may keep the name "Yorisoi Hotline"), the numbers are the same ones, and the
    machine-assisted texts say they are not reviewed."""
    languages = set(json.loads((app_module.WEB_DIR / "i18n" / "status.json")
                               .read_text(encoding="utf-8"))) - {"_comment"}
    assert len(languages) == 8
    machine = languages - {"ja", "en"}
    [japan] = shipped()["countries"]
    assert set(japan["name"]) == languages
    assert japan["reviewed"] == dict.fromkeys(machine, False)
    for line in japan["lines"]:
        assert set(line["label"]) == languages and set(line["description"]) == languages, line
        for lang in machine:
            assert line["label"][lang].strip(), (line["number"], lang)
            # The description is a sentence in that language, not the English one copied.
            assert line["description"][lang].strip() not in ("", line["description"]["en"]), \
                (line["number"], lang)
            assert line["description"][lang] != line["description"]["ja"], (line["number"], lang)
        assert line["reviewed"] == dict.fromkeys(machine, False), line["number"]
    assert [line["number"] for line in japan["lines"]] == SEED_NUMBERS + ["0120-0-78310"]
    # Numbers inside the texts are the line's own ones (110 in the police line's description).
    police = japan["lines"][0]
    assert all("110" in text for text in police["description"].values())

"""The operator's support list (web/support.json) is checked at start-up, with a clear error."""
from __future__ import annotations

import json
import shutil

import pytest

from api import app as app_module
from api.app import create_app
from api.settings import Settings
from api.support_config import SupportConfigError, check_file, problems


def test_the_shipped_file_is_valid():
    check_file(app_module.WEB_DIR / "support.json")
    config = json.loads((app_module.WEB_DIR / "support.json").read_text())
    numbers = {item["number"] for item in config["locales"]["ja"]["items"]}
    assert {"#9110", "#8103", "#8891", "0120-279-338", "0570-064-556"} <= numbers


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c.update(quick_exit_url="http://example.com"), "quick_exit_url"),
    (lambda c: c["locales"].pop("ja"), "locales.ja is missing"),
    (lambda c: c["locales"]["en"].update(items=[]), "locales.en.items"),
    (lambda c: c["locales"]["ja"]["items"][0].update(number="call me"), "number"),
    (lambda c: c["locales"]["ja"]["items"][0].update(name=""), "name"),
])
def test_each_mistake_is_named(mutate, message):
    config = json.loads((app_module.WEB_DIR / "support.json").read_text())
    mutate(config)
    assert any(message in p for p in problems(config))


def test_the_service_refuses_to_start_with_a_broken_file(tmp_path, monkeypatch):
    web = tmp_path / "web"
    shutil.copytree(app_module.WEB_DIR, web)
    (web / "support.json").write_text('{"quick_exit_url": "about:blank", "locales": {}')
    monkeypatch.setattr(app_module, "WEB_DIR", web)
    with pytest.raises(SupportConfigError, match="cannot read it as JSON"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path}/db.sqlite", data_dir=tmp_path))

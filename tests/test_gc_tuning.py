"""A serving process freezes its start-up heap and raises the collector's thresholds once started
(api/app.py, measured in bench/submit_bench.py); the setting turns it off."""
from __future__ import annotations

import gc

import pytest
from fastapi.testclient import TestClient

from api.app import GC_THRESHOLDS, create_app
from api.settings import Settings


@pytest.fixture
def restore_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.parametrize("tune", [True, False])
def test_started_app_settles_the_collector_when_asked(tmp_path, restore_gc, tune):
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    settings = Settings(data_dir=tmp_path, tune_garbage_collector=tune)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        if tune:
            assert gc.get_freeze_count() > 1000  # the app, its routes, SQLAlchemy, ...
            assert gc.get_threshold() == GC_THRESHOLDS
        else:
            assert gc.get_freeze_count() == 0
            assert gc.get_threshold() == (700, 10, 10)

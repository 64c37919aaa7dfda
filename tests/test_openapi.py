"""openapi.yaml is the contract partners read; it must equal what the app serves."""
from __future__ import annotations

import yaml

from api.openapi_export import CONTRACT, render


def test_openapi_yaml_equals_the_served_schema():
    assert yaml.safe_load(CONTRACT.read_text()) == yaml.safe_load(render()), (
        "openapi.yaml is stale: run `python -m api.openapi_export`")

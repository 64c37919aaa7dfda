"""deploy/ and the Dockerfile say what an operator copies; these checks catch what cannot be
built here (no Docker daemon): a package the image leaves out, a setting the compose file
misspells (pydantic-settings ignores unknown HASHGUARD_* names silently), a missing volume."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def compose() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())


def test_the_image_holds_every_package_the_server_imports():
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["packages"]["find"]["include"]
    server_packages = {name.rstrip("*") for name in include} - {"partner_tools"}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile(), re.M))
    assert server_packages <= copied, f"not in the image: {sorted(server_packages - copied)}"


def test_the_image_keeps_its_data_runs_unprivileged_and_checks_readiness():
    text = dockerfile()
    runtime = text[text.rindex("FROM "):]
    assert re.search(r'^VOLUME \["/var/lib/hashguard"\]', runtime, re.M)
    assert "ENV HASHGUARD_DATA_DIR=/var/lib/hashguard" in runtime
    user = re.findall(r"^USER (\S+)", runtime, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/readyz", runtime, re.M)


def test_compose_runs_two_replicas_behind_the_shipped_caddyfile():
    services = compose()["services"]
    replicas = [s for s in services.values() if "hashguard" in str(s.get("image", ""))]
    assert len(replicas) >= 2
    proxy = services["proxy"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    upstreams = proxy["environment"]["HASHGUARD_UPSTREAMS"].split()
    assert sorted(u.split(":")[0] for u in upstreams) == sorted(
        n for n, s in services.items() if s in replicas)
    # Only the proxy is published; the database only on the private network.
    assert [n for n, s in services.items() if s.get("ports")] == ["proxy"]
    assert compose()["networks"]["backend"]["internal"] is True


def test_every_hashguard_setting_named_in_deploy_exists():
    known = {f"HASHGUARD_{name.upper()}" for name in Settings.model_fields}
    named = set()
    for service in compose()["services"].values():
        named |= {k for k in (service.get("environment") or {}) if k.startswith("HASHGUARD_")}
    named |= set(re.findall(r"^(HASHGUARD_\w+)=", (ROOT / "deploy" / "env.example").read_text(),
                            re.M))
    # Read by the proxy (deploy/Caddyfile), not by the service.
    proxy_only = set(re.findall(r"\{\$(HASHGUARD_\w+)", (ROOT / "deploy" / "Caddyfile").read_text()))
    assert named - proxy_only <= known, sorted(named - proxy_only - known)
    assert {"HASHGUARD_SECRET", "HASHGUARD_TRANSPARENCY_KEY", "HASHGUARD_METRICS_TOKEN",
            "HASHGUARD_TRUST_FORWARDED_FOR", "HASHGUARD_DATABASE_URL"} <= named

"""deploy/ as processes: the shipped Caddyfile (Debian's caddy) terminating TLS in front of two
`hashguard serve` processes on one fresh PostgreSQL database, checked end to end through the
proxy, as deploy/compose.yaml runs it (there is no Docker daemon here).

The client connects from its own loopback address (127.0.0.77), which nothing else uses, so a
client address in any log line is found by a plain search.
"""
from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.reliability.server import (SECRET, ServerProcess, add_partner, free_port,
                                      random_pdq, server_env, throwaway_postgres)

CADDYFILE = Path(__file__).resolve().parents[1] / "deploy" / "Caddyfile"
CLIENT_ADDRESS = "127.0.0.77"  # the test client's source address (all of 127/8 is loopback)
SPOOFED = "203.0.113.9"  # what a client claims in X-Forwarded-For (TEST-NET-3)
METRICS_TOKEN = "metrics-" + "m" * 40
TRANSPARENCY_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("caddy") is None,
                       reason="Debian's caddy is not installed (Makefile TEST_APT_PACKAGES)"),
]


def make_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signs for 127.0.0.1: (ca, cert, key) PEM files."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hashguard test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class Proxy:
    """Debian's caddy running deploy/Caddyfile as shipped; only its environment differs."""

    def __init__(self, folder: Path, cert: Path, key: Path, upstreams: list[int]):
        self.port = free_port()
        self.log = folder / "caddy.log"
        home = folder / "caddy-home"
        home.mkdir()
        self.env = {"PATH": os.environ["PATH"], "HOME": str(home),
                    "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
                    "HASHGUARD_SITE": "127.0.0.1", "HASHGUARD_HTTPS_PORT": str(self.port),
                    "HASHGUARD_TLS_CERT": str(cert), "HASHGUARD_TLS_KEY": str(key),
                    "HASHGUARD_UPSTREAMS": " ".join(f"127.0.0.1:{p}" for p in upstreams),
                    # More than the shipped WARN: the test must see what a chattier proxy logs.
                    "HASHGUARD_PROXY_LOG_LEVEL": "DEBUG"}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"caddy did not listen:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def topology(tmp_path):
    ca, cert, key = make_certificate(tmp_path)
    with throwaway_postgres("deploy") as database_url:
        servers = []
        for name in ("api1", "api2"):
            data_dir = tmp_path / name
            data_dir.mkdir()
            env = server_env(data_dir, HASHGUARD_TRUST_FORWARDED_FOR="true",
                             HASHGUARD_METRICS_TOKEN=METRICS_TOKEN,
                             HASHGUARD_TRANSPARENCY_KEY=TRANSPARENCY_KEY,
                             HASHGUARD_LOG_LEVEL="DEBUG",
                             # Per-client limits on, as deployed (server_env turns them off).
                             HASHGUARD_CASE_WRITES_PER_HOUR_PER_CLIENT="100",
                             HASHGUARD_TOKEN_LOOKUPS_PER_MINUTE_PER_CLIENT="60",
                             # A waiting pull is woken only by the other process's commit
                             # (LISTEN/NOTIFY), never by its own periodic re-check.
                             HASHGUARD_LONG_POLL_RECHECK_SECONDS="60")
            servers.append(ServerProcess(database_url, env))
        proxy = Proxy(tmp_path, cert, key, [s.port for s in servers])
        try:
            for server in servers:
                server.start()
            proxy.start()
            trust = ssl.create_default_context(cafile=str(ca))
            with httpx.Client(base_url=f"https://127.0.0.1:{proxy.port}", verify=trust,
                              transport=httpx.HTTPTransport(local_address=CLIENT_ADDRESS,
                                                            verify=trust),
                              timeout=40) as client:
                # Caddy's first active health checks: both replicas in rotation.
                deadline = time.monotonic() + 20
                while client.get("/readyz").status_code != 200:
                    assert time.monotonic() < deadline, "not ready through the proxy"
                    time.sleep(0.2)
                yield database_url, servers, proxy, client
        finally:
            proxy.stop()
            for server in servers:
                server.stop()


def pulls_counted(server: ServerProcess) -> float:
    """How many pulls this replica answered (its own /metrics, read with the token)."""
    text = httpx.get(server.base_url + "/metrics",
                     headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("hashguard_http_requests_total")
               and 'route="/v1/partner/hashes"' in line)


def test_through_the_proxy_end_to_end(topology):
    database_url, servers, proxy, client = topology
    rng = random.Random(23)
    partner_key = add_partner(database_url, servers[0].env, "examplenet")
    partner = {"Authorization": f"Bearer {partner_key}"}

    # Long-poll across processes: two waiting pulls, spread by round robin over both replicas;
    # one submit lands on one of them, and both pulls answer at once.
    first = client.get("/v1/partner/hashes", headers={**partner, "X-Forwarded-For": SPOOFED})
    assert first.status_code == 200, first.text
    cursor = first.json()["next_cursor"]
    answers: list = [None, None]

    def wait_for_entry(slot: int) -> None:
        started = time.monotonic()
        response = client.get("/v1/partner/hashes", headers=partner,
                              params={"cursor": cursor, "wait": 30})
        answers[slot] = (response, time.monotonic() - started)

    pollers = [threading.Thread(target=wait_for_entry, args=(i,)) for i in range(2)]
    for poller in pollers:
        poller.start()
        time.sleep(0.3)
    time.sleep(1.0)  # both are waiting
    value = random_pdq(rng)
    submitted = client.post("/v1/cases", json={"pathway": "adult", "hashes": [
        {"signal_type": "pdq", "value": value, "quality": 100}]})
    assert submitted.status_code == 201, submitted.text
    case = submitted.json()
    for poller in pollers:
        poller.join(40)
    for response, seconds in answers:
        assert response.status_code == 200, response.text
        assert [e["value"] for e in response.json()["entries"]] == [value]
        assert seconds < 10, f"a waiting pull answered after {seconds:.1f} s, not at the commit"
    assert all(pulls_counted(server) >= 1 for server in servers), "one replica took every pull"

    # The case's owner, through the proxy (either replica: they share the secret).
    for _ in range(2):
        status = client.get(f"/v1/cases/{case['case_ref']}",
                            headers={"Authorization": f"Bearer {case['token']}"})
        assert status.status_code == 200, status.text

    # /metrics: never through the proxy; on a replica only with the token.
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
                      ).status_code == 404
    assert httpx.get(servers[0].base_url + "/metrics").status_code == 401
    scraped = httpx.get(servers[0].base_url + "/metrics",
                        headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200 and "hashguard_database_autovacuum_off" in scraped.text

    # Things that make proxies log: a plain-HTTP request on the TLS port (a failed handshake),
    # and a replica going away (Caddy retries the next one within lb_try_duration).
    with socket.create_connection(("127.0.0.1", proxy.port)) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.recv(100)
    servers[1].kill()
    for _ in range(4):
        assert client.get("/v1/partner/hashes", headers=partner,
                          params={"cursor": cursor}).status_code == 200
    time.sleep(0.5)

    # Last, as it locks this client's address out: a client cannot choose its own address by
    # sending X-Forwarded-For. Each wrong partner key claims another address, and the failed-key
    # limit (20 a minute per address, on the one replica left) still binds, so Caddy replaced
    # the header rather than passing it on or appending to it.
    refused = [client.get("/v1/partner/hashes", headers={
        "Authorization": "Bearer hgp_1_wrong", "X-Forwarded-For": f"198.51.100.{i}"}
    ).status_code for i in range(60)]
    assert refused.count(429) >= 60 - 20, refused

    # No client address, claimed address, token, key, case reference or hash value in any log.
    secrets = [CLIENT_ADDRESS, SPOOFED, "198.51.100.", case["token"], case["case_ref"],
               partner_key, value, METRICS_TOKEN, SECRET]
    for log in [proxy.log] + [server.log for server in servers]:
        text = log.read_text(errors="replace")
        assert text.strip(), f"{log} is empty: the check would prove nothing"
        for secret in secrets:
            assert secret not in text, f"{secret[:12]}... found in {log.name}"

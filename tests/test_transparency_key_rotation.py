"""Rotating the transparency signing key (issue 23): the old key signs the change, the service
publishes it with the public key, every builder signs with the new key, and a partner's verifier
that trusted the old key follows the change and says so, while a change not signed by the
trusted key is refused."""
from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from partner_tools.cli import transparency_getter
from partner_tools.transparency import Verifier, VerifierState
from store.secret_check import raw_public
from tests.hashes import BRIDGE, C_PNG
from tests.helpers import cli_app, new_case
from txlog.errors import VerificationError
from txlog.head import KEY_PATH, b64decode, b64encode, key_change_bytes, key_id


def _verify(client, key: str, state: VerifierState):
    client.headers["Authorization"] = f"Bearer {key}"
    return Verifier(transparency_getter(client), state, check_entries=True).run()


def _rotate(settings) -> str:
    result = CliRunner().invoke(cli_app(), ["transparency", "rotate-key", "--yes"], env={
        "HASHGUARD_DATABASE_URL": settings.database_url,
        "HASHGUARD_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def test_a_verifier_follows_the_signed_key_change(client, app, make_partner, settings):
    partner_key = make_partner("p", "adult")
    new_case(client, [BRIDGE])
    app.state.transparency.catch_up()
    state = VerifierState()
    _verify(client, partner_key, state)
    old_public = state.public_key

    new_public = b64decode(_rotate(settings))
    published = client.get(KEY_PATH).json()
    assert b64decode(published["public_key"]) == new_public
    assert [b64decode(c["old_public_key"]) for c in published["key_changes"]] == [old_public]

    new_case(client, [C_PNG])
    app.state.transparency.catch_up()  # the running builder moves to the new key
    outcome = _verify(client, partner_key, state)
    assert [(c.old_key_id, c.new_key_id) for c in outcome.key_changes] == [
        (key_id(old_public), key_id(new_public))]
    assert {t.head.key_id for t in outcome.trees} == {key_id(new_public)}
    assert state.public_key == new_public
    # Trusted now: the next run has no change to report.
    assert _verify(client, partner_key, state).key_changes == []


def test_a_key_change_not_signed_by_the_trusted_key_is_refused(client, app, make_partner):
    partner_key = make_partner("p", "adult")
    new_case(client, [BRIDGE])
    app.state.transparency.catch_up()
    state = VerifierState()
    _verify(client, partner_key, state)
    trusted = state.public_key
    # Whoever serves the log swaps in its own key and "endorses" it with that same key.
    impostor = Ed25519PrivateKey.generate()
    forged = {"old_public_key": b64encode(trusted), "new_public_key":
              b64encode(raw_public(impostor)), "timestamp": 1, "signature": b64encode(
                  impostor.sign(key_change_bytes(trusted, raw_public(impostor), 1)))}
    client.headers["Authorization"] = f"Bearer {partner_key}"
    honest = transparency_getter(client)

    def served(path, params):
        if path == KEY_PATH:
            return {"public_key": b64encode(raw_public(impostor)), "key_changes": [forged]}
        return honest(path, params)

    try:
        Verifier(served, state).run()
    except VerificationError as refused:
        assert "no key change signed by the trusted key" in str(refused)
    else:
        raise AssertionError("the verifier trusted a key its trusted key never signed over")
    assert state.public_key == trusted

"""manage.py configure_sso: the same settings for automation; the secret comes from a file."""

import json

import pytest
from django.core.management import CommandError, call_command

from apps.providers.encryption import secret_decrypt
from tests.conftest import audit_events, tenant_user
from tests.identity.conftest import SECRET, stored


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    return path


def test_it_configures_a_tenant_when_an_operator_allows_loopback(acme, idp, secret_file, capsys):
    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.0/8")
    call_command(
        "configure_sso",
        "acme",
        "--issuer",
        idp.issuer,
        "--client-id",
        "foundry",
        "--client-secret-file",
        str(secret_file),
        "--allowed-domain",
        "acme.test",
        "--roles-claim",
        "groups",
        "--role-map",
        "foundry-admins=admin",
        "--role-map",
        "foundry-viewers=viewer",
        "--no-jit",
        "--sso-required",
        "--break-glass",
        "owner@acme.test",
    )
    assert "single sign-on via" in capsys.readouterr().out
    config = stored(acme)
    assert config.role_map == {"foundry-admins": "admin", "foundry-viewers": "viewer"}
    assert (config.jit_enabled, config.sso_required, config.break_glass_email) == (False, True, "owner@acme.test")
    assert secret_decrypt(config.client_secret_encrypted, place=None) == SECRET
    (event,) = audit_events("acme", action="sso.configure")
    assert event.actor_id == "service:cli:configure_sso"
    # People are named by pseudonymous id in the trail, which an erasure does not rewrite.
    assert event.data["break_glass"] == f"user:{tenant_user(acme, 'owner@acme.test').pk}"
    assert "owner@acme.test" not in json.dumps(event.data)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--role-map", "bosses=owner"], "owner is never granted"),
        (["--role-map", "bosses"], "is not VALUE=ROLE"),
        (["--sso-required"], "break_glass_required"),
        (["--client-secret-file", "/nonexistent/secret"], "Cannot read the client secret"),
    ],
)
def test_bad_input_is_a_clear_command_error(acme, idp, secret_file, extra, message, settings):
    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.0/8")
    args = ["acme", "--issuer", idp.issuer, "--client-id", "c", "--client-secret-file", str(secret_file)]
    with pytest.raises(CommandError, match=message):
        call_command("configure_sso", *args, "--roles-claim", "groups", *extra)
    assert stored(acme) is None


def test_an_unknown_tenant_and_a_refused_address_are_command_errors(acme, idp, secret_file):
    with pytest.raises(CommandError, match="No tenant"):
        call_command("configure_sso", "nope", "--issuer", idp.issuer, "--client-id", "c")
    with pytest.raises(CommandError, match="issuer_insecure"):
        call_command(
            "configure_sso",
            "acme",
            "--issuer",
            idp.issuer,
            "--client-id",
            "c",
            "--client-secret-file",
            str(secret_file),
        )
    assert idp.requests == []

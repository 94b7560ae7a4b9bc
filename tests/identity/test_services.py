"""sso_configure / sso_disable against a real discovery server on loopback."""

import json
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_tenants.utils import schema_context

from apps.identity.services import role_map_parse, sso_disable
from apps.providers.encryption import secret_decrypt
from foundry.errors import ServiceError
from tests.conftest import audit_events, tenant_user
from tests.identity.conftest import SECRET, configure, raw_rows, stored

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def _codes(exc: ValidationError) -> dict[str, list[str]]:
    return {field: [e.code for e in errors] for field, errors in exc.error_dict.items()}


def _refused(acme, idp, field="issuer", **fields) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        configure(acme, idp, **fields)
    assert stored(acme) is None
    assert audit_events("acme", action="sso.configure") == []
    return _codes(caught.value)[field]


def test_it_stores_the_configuration_and_what_discovery_found(acme, idp):
    config = configure(
        acme,
        idp,
        allowed_domains=["Acme.test", "acme.example.com"],
        roles_claim="groups",
        role_map={"foundry-admins": "admin", "devs": "developer"},
        jit_enabled=False,
        sso_required=True,
        break_glass_email="owner@acme.test",
    )
    config = stored(acme)
    assert (config.issuer, config.client_id, config.scopes) == (idp.issuer, "foundry-acme", "openid email profile")
    assert config.allowed_domains == ["acme.example.com", "acme.test"]
    assert (config.roles_claim, config.role_map) == ("groups", {"foundry-admins": "admin", "devs": "developer"})
    assert (config.jit_enabled, config.sso_required, config.break_glass_email) == (False, True, "owner@acme.test")
    assert config.authorization_endpoint == f"{idp.issuer}/authorize"
    assert config.token_endpoint == f"{idp.issuer}/token"
    assert config.jwks_uri == f"{idp.issuer}/jwks"
    assert config.end_session_endpoint == f"{idp.issuer}/logout"
    assert config.signing_algs == ["RS256", "ES256"]  # HS256 is never kept
    assert config.discovered_at is not None
    assert idp.requests == ["/.well-known/openid-configuration"]


def test_the_secret_is_encrypted_at_rest_and_kept_out_of_the_audit(acme, idp):
    configure(acme, idp)
    assert SECRET not in repr(raw_rows(acme))
    with schema_context("acme"):
        assert secret_decrypt(stored(acme).client_secret_encrypted, place=None) == SECRET
    (event,) = audit_events("acme", action="sso.configure")
    assert SECRET not in json.dumps(event.data)
    assert event.data["issuer"] == idp.issuer and event.data["secret_replaced"] is True


def test_saving_again_without_the_secret_keeps_it_unless_the_client_changes(acme, idp):
    configure(acme, idp)
    before = stored(acme).client_secret_encrypted
    configure(acme, idp, client_secret=None, scopes="openid email")
    assert stored(acme).client_secret_encrypted == before and stored(acme).scopes == "openid email"
    with pytest.raises(ValidationError) as caught:
        configure(acme, idp, client_secret=None, client_id="another-client")
    assert _codes(caught.value) == {"client_secret": ["client_secret_required"]}
    assert stored(acme).client_id == "foundry-acme"


def test_the_first_configuration_needs_a_secret(acme, idp):
    assert _refused(acme, idp, "client_secret", client_secret=None) == ["client_secret_required"]


def test_an_issuer_mismatch_is_refused(acme, idp):
    assert _refused(acme, idp, issuer=idp.issuer + "/") == ["issuer_mismatch"]
    idp.document = {**idp.discovery(), "issuer": "https://evil.example.com"}
    assert _refused(acme, idp) == ["issuer_mismatch"]


@pytest.mark.parametrize("endpoint", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
def test_a_missing_endpoint_is_refused(acme, idp, endpoint):
    idp.document = {k: v for k, v in idp.discovery().items() if k != endpoint}
    assert _refused(acme, idp) == ["discovery_endpoint_missing"]


def test_a_plain_http_endpoint_on_the_internet_is_refused(acme, idp):
    idp.document = {**idp.discovery(), "token_endpoint": "http://93.184.215.14/token"}
    assert _refused(acme, idp) == ["discovery_endpoint_insecure"]


@pytest.mark.parametrize("algs", [["HS256"], ["none"], ["none", "HS256", "HS512"], [], "RS256"])
def test_a_provider_offering_no_asymmetric_signature_is_refused(acme, idp, algs):
    idp.document = {**idp.discovery(), "id_token_signing_alg_values_supported": algs}
    assert _refused(acme, idp) == ["discovery_algs_refused"]


def test_a_slow_provider_times_out_within_the_bound(acme, idp, quick_timeout):
    idp.mode = "slow"
    started = time.monotonic()
    assert _refused(acme, idp) == ["discovery_timeout"]
    assert time.monotonic() - started < 3


def test_redirects_are_not_followed(acme, idp):
    idp.mode = "redirect"
    assert _refused(acme, idp) == ["discovery_redirect_refused"]
    assert idp.requests == ["/.well-known/openid-configuration"]


def test_a_document_that_is_not_json_is_refused(acme, idp):
    idp.mode = "html"
    assert _refused(acme, idp) == ["discovery_not_json"]


def test_loopback_is_refused_unless_an_operator_allows_it(acme, idp, settings):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    assert _refused(acme, idp) == ["issuer_insecure"]
    assert idp.requests == []


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"issuer": "ftp://idp.example.com"}, "issuer", "issuer_invalid"),
        ({"issuer": "https://idp.example.com/?tenant=1"}, "issuer", "issuer_invalid"),
        ({"issuer": "https://user:pw@idp.example.com"}, "issuer", "issuer_invalid"),
        ({"client_id": ""}, "client_id", "client_id_invalid"),
        ({"client_secret": "has space"}, "client_secret", "client_secret_invalid"),
        ({"scopes": "email profile"}, "scopes", "scopes_openid_required"),
        ({"allowed_domains": ["not a domain"]}, "allowed_domains", "allowed_domains_invalid"),
        ({"role_map": {"admins": "admin"}}, "roles_claim", "roles_claim_required"),
        ({"roles_claim": "groups", "role_map": {"admins": "superuser"}}, "role_map", "role_unknown"),
        ({"roles_claim": "groups", "role_map": {"bosses": "owner"}}, "role_map", "role_map_owner_refused"),
        ({"sso_required": True}, "break_glass_email", "break_glass_required"),
        ({"sso_required": True, "break_glass_email": "admin@acme.test"}, "break_glass_email", "break_glass_not_owner"),
        ({"break_glass_email": "nobody@acme.test"}, "break_glass_email", "break_glass_not_owner"),
    ],
)
def test_bad_input_is_refused_with_a_code_and_nothing_is_fetched_or_stored(acme, idp, fields, field, code):
    assert code in _refused(acme, idp, field, **fields)
    assert idp.requests == []


def test_role_map_lines_are_parsed_and_malformed_ones_refused():
    assert role_map_parse(["a=b=Admin", "", " devs = developer "]) == {"a=b": "admin", "devs": "developer"}
    with pytest.raises(ValidationError) as caught:
        role_map_parse(["admins"])
    assert caught.value.code == "role_map_invalid"


@pytest.mark.parametrize("email", ["developer@acme.test", "viewer@acme.test", "operator@acme.test"])
def test_roles_without_settings_manage_are_refused(acme, idp, email):
    with pytest.raises(PermissionDenied):
        configure(acme, idp, email=email)
    assert stored(acme) is None
    configure(acme, idp)
    with schema_context("acme"), pytest.raises(PermissionDenied):
        sso_disable(actor=tenant_user(acme, email))
    assert stored(acme) is not None


def test_disable_forgets_the_configuration_and_is_audited(acme, idp):
    configure(acme, idp)
    with schema_context("acme"):
        with pytest.raises(PermissionDenied):
            sso_disable(actor=tenant_user(acme, "admin@acme.test"))  # owners only
        sso_disable(actor=tenant_user(acme, "owner@acme.test"))
        with pytest.raises(ServiceError) as caught:
            sso_disable(actor=tenant_user(acme, "owner@acme.test"))
    assert stored(acme) is None and caught.value.code == "sso_not_configured"
    (event,) = audit_events("acme", action="sso.disable")
    assert event.data == {"issuer": idp.issuer, "sessions_ended": 0, "tokens_revoked": 0}


def test_rotating_the_encryption_keys_reaches_the_sso_client_secret(acme, settings, encryption_key):
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from apps.identity.models import SsoConfiguration
    from apps.identity.services import sso_secret_place
    from apps.providers.encryption import secret_decrypt, secret_encrypt

    with schema_context("acme"):
        SsoConfiguration.objects.create(
            issuer="https://idp.example.com",
            client_id="foundry",
            client_secret_encrypted=secret_encrypt("s3cret-value", place=sso_secret_place()),
            authorization_endpoint="https://idp.example.com/auth",
            token_endpoint="https://idp.example.com/token",
            jwks_uri="https://idp.example.com/jwks",
            signing_algs=["RS256"],
            discovered_at=timezone.now(),
            updated_at=timezone.now(),
        )
    new = Fernet.generate_key().decode()
    settings.FOUNDRY_ENCRYPTION_KEYS = [new, encryption_key]
    call_command("rotate_encryption_keys", stdout=StringIO())
    settings.FOUNDRY_ENCRYPTION_KEYS = [new]  # the old key removed: the secret still opens
    with schema_context("acme"):
        stored_secret = SsoConfiguration.objects.get().client_secret_encrypted
        assert secret_decrypt(stored_secret, place=sso_secret_place()) == "s3cret-value"

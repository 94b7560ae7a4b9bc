"""What a refusal quotes of an identity provider's error answer: its `error` only as OAuth says it
is, an error code (RFC 6749 5.2). Other text there may repeat what was sent, the client secret
among it, and the refusal goes to the sign-in page and the audit trail."""

import pytest
from django_tenants.utils import schema_context

from apps.identity.oidc import SsoLoginFailed, _idp_call
from tests.identity.scripted_idp import ScriptedIdp

SECRET = "s3cr3t-client-value"


@pytest.fixture
def idp(loopback_allowed):
    server = ScriptedIdp()
    yield server
    server.httpd.shutdown()


@pytest.mark.parametrize(
    ("error", "quoted"),
    [
        ("invalid_grant", "(invalid_grant)"),
        (f"invalid_client: secret {SECRET} is wrong", None),
        (SECRET, None),
        ({"nested": "x"}, None),
    ],
)
def test_only_an_error_code_is_quoted(acme, idp, error, quoted):
    idp.token_error = {"error": error}
    with schema_context(acme.schema_name), pytest.raises(SsoLoginFailed) as refused:
        _idp_call("POST", f"{idp.issuer}/token", form_body={"client_secret": SECRET, "code": "c"})
    message = str(refused.value)
    assert SECRET not in message and "nested" not in message
    if quoted:
        assert quoted in message

"""Token names are "1 to 100 printable characters" (apps/tokens/services.py token_issue says so in
its refusal): a name that is not printable — DEL, C1 controls, bidirectional overrides that make
the console and the audit trail display another name than the one stored — is a 400 that issues
nothing."""

import pytest
from django_tenants.utils import schema_context

from apps.tokens.models import ApiToken
from tests.api.conftest import api, issue


@pytest.mark.parametrize("name", ["deploy\x7fbot", "deploy\x85bot", "\u202etob-yolped", "ci\u200b"])
def test_a_token_name_that_is_not_printable_is_refused(acme, name):
    client = api(acme, issue(acme))
    response = client.post(
        "/api/v1/tokens", {"name": name, "role": "viewer", "scopes": ["read"]}, content_type="application/json"
    )
    assert response.status_code == 400, response.json()
    assert "name" in response.json()["error"]["details"]
    with schema_context("acme"):
        assert not ApiToken.objects.filter(name=name.strip()).exists()

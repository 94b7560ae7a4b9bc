"""An archive value nested deeper than Python's JSON decoder reads (~1,000 levels), though within
what PostgreSQL accepts, is refused (`archive_rows_invalid`, naming the member): every later read
of the row would fail (the sign-in page reads the SSO settings)."""

import io
import uuid
from datetime import UTC, datetime

import pytest
from django_tenants.utils import schema_context

from apps.identity.models import SsoConfiguration
from apps.identity.services import sso_secret_place
from apps.lifecycle.archive import ArchiveError, tenant_import
from apps.providers.encryption import secret_encrypt
from tests.lifecycle.test_archive import archive_of, with_member

DEPTH = 3_000  # past Python's recursion limit (1,000), far below PostgreSQL's max_stack_depth


def test_an_archive_json_value_nested_past_pythons_decoder_is_refused(acme):
    with schema_context(acme.schema_name):
        SsoConfiguration.objects.create(
            issuer="https://idp.example",
            client_id="client",
            client_secret_encrypted=secret_encrypt("secret", place=sso_secret_place()),
            authorization_endpoint="https://idp.example/authorize",
            token_endpoint="https://idp.example/token",
            jwks_uri="https://idp.example/jwks",
            discovered_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
            role_map={"group": "MARK"},
        )
    data, _ = archive_of(acme)
    member = "schema/identity_ssoconfiguration.ndjson"
    nested = ("[" * DEPTH + "]" * DEPTH).encode()
    crafted = with_member(data, member, lambda content: content.replace(b'"MARK"', nested))
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(crafted), slug=f"r{uuid.uuid4().hex[:10]}")
    assert (refused.value.code, refused.value.member) == ("archive_rows_invalid", member)
    assert "role_map holds JSON nested deeper than 500 levels" in refused.value.message

"""Importing a crafted archive (consistent, as another tool could write one): values the platform
could not use later are refused or made usable, and no secret comes in (docs/export.md)."""

import io
import json
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from apps.lifecycle.archive import ArchiveError, tenant_import
from apps.providers.models import ProviderCredential
from apps.tenants.models import Tenant
from tests.conftest import client_for
from tests.lifecycle.test_archive import archive_of, public_rows, with_member, world
from tests.lifecycle.test_archive import signing as signing
from tests.lifecycle.test_archive import stocked as stocked
from tests.lifecycle.test_archive_bad_input import tenant_row_edit


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def slug() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


def console_import(data: bytes):
    client = client_for(None, "operator@platform.test")
    client.raise_request_exception = False
    archive = SimpleUploadedFile("acme.zip", data, content_type="application/zip")
    return client.post("/tenants/import/", {"archive": archive, "slug": slug(), "name": ""})


def _first_event(change):
    def edit(content: bytes) -> bytes:
        lines = content.splitlines()
        row = json.loads(lines[-1])
        change(row)
        lines[-1] = json.dumps(row).encode()
        return b"\n".join(lines) + b"\n"

    return edit


# --- allowed networks --------------------------------


@pytest.mark.parametrize("network", [" 10.0.0.0/8", "10.0.0.0/8\n"], ids=["leading-space", "trailing-newline"])
def test_an_imported_allowed_network_is_one_the_platform_can_read(acme, network):
    """The networks are kept as the operator's form saves them: every http tool, SSO discovery,
    provider and sink delivery reads them with Tenant.http_networks()."""
    crafted = with_member(
        archive_of(acme)[0],
        "public/tenants_tenant.ndjson",
        tenant_row_edit(lambda row: row.update(http_allowed_networks=[network])),
    )
    try:
        new = tenant_import(io.BytesIO(crafted), slug=slug(), keep_networks=True)
    except ArchiveError as e:
        assert e.code == "archive_rows_invalid"
        return
    tenant = Tenant.objects.get(pk=new.pk)
    try:
        tenant.http_networks()
    except ValueError as e:
        pytest.fail(f"imported {tenant.http_allowed_networks!r}, which every http_networks() call refuses: {e}")


# --- an audit chain at the end of bigint ------------------------------------


def test_an_audit_event_at_the_largest_sequence_number_is_a_400_not_a_500(acme):
    """An archive whose chain ends at 2^63-1 leaves no room for `tenant.imported`, nor any event
    after it: refused as the archive's fault (400), nothing written."""
    crafted = with_member(
        archive_of(acme)[0], "public/audit_auditevent.ndjson", _first_event(lambda r: r.update(seq=2**63 - 1))
    )
    before = world()
    response = console_import(crafted)
    assert response.status_code == 400, response.status_code
    assert world() == before


# --- audit details nested past Python's decoder ----------------------------------------------


def test_an_imported_audit_event_nested_past_pythons_decoder_does_not_break_the_audit_trail(acme):
    """Details nested past Python's decoder (text in the public schema, which the JSON depth check
    does not read) are shown as their text: the audit API and event page answer 200."""
    deep = "[" * 100_000 + "]" * 100_000
    crafted = with_member(
        archive_of(acme)[0], "public/audit_auditevent.ndjson", _first_event(lambda r: r.update(details=deep))
    )
    try:
        new = tenant_import(io.BytesIO(crafted), slug=slug())
    except ArchiveError as e:
        assert e.code == "archive_rows_invalid"
        return
    owner = client_for(new, "owner@acme.test")
    owner.raise_request_exception = False
    assert owner.get("/api/v1/audit/events").status_code == 200
    assert owner.get("/audit/events/1/").status_code == 200


# --- secrets encrypted under a key that is not ours -----------------------------------------


def test_a_secret_an_archive_carries_is_not_imported(acme, settings):
    """docs/export.md: archives hold no secrets, and key rotation passes an imported workspace by.
    A crafted archive's ciphertext (under some other platform's key) is blanked on import."""
    ours, theirs = Fernet.generate_key().decode(), Fernet.generate_key()
    settings.FOUNDRY_ENCRYPTION_KEYS = [ours]
    now = datetime.now(UTC).isoformat()
    row = {
        "id": 1,
        "provider": "openai",
        "base_url": "",
        "api_key_encrypted": Fernet(theirs).encrypt(b"sk-someone-elses").decode(),
        "api_key_last4": "else",
        "organization": "",
        "api_version": "",
        "deployment": "",
        "created_by": "x",
        "created_at": now,
        "updated_by": "x",
        "updated_at": now,
    }
    data = archive_of(acme)[0]
    crafted = with_member(
        data,
        "schema/providers_providercredential.ndjson",
        lambda _: json.dumps(row).encode() + b"\n",
    )
    try:
        new = tenant_import(io.BytesIO(crafted), slug=slug())
    except ArchiveError:
        return  # refused: fine
    with schema_context(new.schema_name):
        stored = ProviderCredential.objects.get(provider="openai").api_key_encrypted
    try:
        call_command("rotate_encryption_keys")
    except CommandError as e:
        pytest.fail(f"key rotation fails because of the imported secret: {e}")
    assert stored == "", "the import kept a secret encrypted under a key this platform does not have"


def test_a_webhook_sink_with_a_secret_arrives_disabled_and_without_it(stocked):
    """As an export writes it: a sink whose secret stays behind is off until its admin sets one."""
    ciphertext = Fernet(Fernet.generate_key()).encrypt(b"someone-elses-hmac-key").decode()

    def signed(content: bytes) -> bytes:
        rows = [json.loads(line) for line in content.splitlines()]
        for row in rows:
            row.update(enabled=True, secret_encrypted=ciphertext)
        return b"".join(json.dumps(row).encode() + b"\n" for row in rows)

    crafted = with_member(archive_of(stocked)[0], "public/audit_auditsink.ndjson", signed)
    new = tenant_import(io.BytesIO(crafted), slug=slug())
    sinks = public_rows(new.pk, "audit_auditsink")
    assert {sink["name"] for sink in sinks} == {"siem", "unsigned"}
    assert all(sink["secret_encrypted"] == "" and sink["enabled"] is False for sink in sinks), sinks


def _users_edited(change):
    def edit(content: bytes) -> bytes:
        rows = [json.loads(line) for line in content.splitlines()]
        for row in rows:
            change(row)
        return b"".join(json.dumps(row).encode() + b"\n" for row in rows)

    return edit


@pytest.mark.parametrize(
    ("column", "when"),
    [
        ("date_joined", "infinity"),
        ("date_joined", "10000-01-01T00:00:00+00:00"),
        # Read by Python, but the owner's next invitation moment (+1 µs) overflowed after the
        # import committed: a 500 on the operator's import page.
        ("invited_at", "9999-12-31T23:59:59.999999+00:00"),
    ],
    ids=["infinity", "year-10000", "last-moment"],
)
def test_a_time_python_cannot_read_or_reckon_from_is_refused(acme, column, when):
    """PostgreSQL takes years up to 294276 and `infinity`, Python's dates end with 9999: such a
    member imported as is, then every read of the members was a 500 (`timestamp too large`)."""
    crafted = with_member(
        archive_of(acme)[0], "schema/accounts_user.ndjson", _users_edited(lambda row: row.update({column: when}))
    )
    new_slug = slug()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(crafted), slug=new_slug)
    assert (refused.value.code, refused.value.member) == ("archive_rows_invalid", "schema/accounts_user.ndjson")
    assert column in refused.value.message
    assert not Tenant.objects.filter(slug=new_slug).exists()


def test_ids_past_half_their_sequences_range_are_refused(acme):
    """The platform's own ids never come near it; a crafted archive there would leave the copy
    next to no ids to give (the audit chain's own bound, AUDIT_SEQ_MAX, is the same rule)."""
    crafted = with_member(
        archive_of(acme)[0], "schema/accounts_user.ndjson", _users_edited(lambda row: row.update(id=row["id"] + 2**62))
    )
    new_slug = slug()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(crafted), slug=new_slug)
    assert (refused.value.code, refused.value.member) == ("archive_rows_invalid", "schema/accounts_user.ndjson")
    assert not Tenant.objects.filter(slug=new_slug).exists()

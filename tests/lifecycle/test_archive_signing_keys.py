"""A trail moved to another platform keeps verifying there once that platform trusts the keys that
signed it, under whatever id it lists them: two platforms may each call a key of theirs `dev1`
(docs/export.md, "Another platform's checkpoints")."""

import base64
import io
import os
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.management import call_command
from django.db import connection

from apps.audit.models import PLATFORM, AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.services import audit_checkpoint_sign, audit_record
from apps.audit.verify import audit_verify
from apps.lifecycle.archive import tenant_export, tenant_import


def seed() -> tuple[str, str]:
    """(private seed, public key), URL-safe base64 as the settings take them."""
    raw = os.urandom(32)
    public = Ed25519PrivateKey.from_private_bytes(raw).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return tuple(base64.urlsafe_b64encode(b).decode().rstrip("=") for b in (raw, public))


def exported_from_origin(tenant, settings, key: str) -> bytes:
    """The archive of `tenant` with a checkpoint signed by the origin platform's `dev1` = `key`."""
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"dev1:{key}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []
    audit_record(action="thing.done", actor="cli:test", chain=tenant.pk)
    assert audit_checkpoint_sign(tenant.pk) is not None
    out = io.BytesIO()
    tenant_export(tenant, out)
    return out.getvalue()


def test_the_destination_verifies_another_platforms_checkpoints_once_it_lists_their_key(fresh_tenant, db, settings):
    origin, origin_public = seed()
    archive = exported_from_origin(fresh_tenant, settings, origin)

    destination, _ = seed()
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"dev1:{destination}"]  # the other platform's own, same id
    new = tenant_import(io.BytesIO(archive), slug=f"r{uuid.uuid4().hex[:10]}")
    assert new.checkpoint_keys_untrusted == ["dev1"]
    with rls_scope(PLATFORM):
        event = AuditEvent.objects.filter(action="tenant.imported", target_id=str(new.pk)).get()
    assert event.data["checkpoint_keys_untrusted"] == ["dev1"]
    refused = audit_verify(new.pk)
    assert not refused.ok and refused.problems[0].kind == "signature_invalid"

    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = [f"origin-dev1:{origin_public}"]  # as checked with the origin
    result = audit_verify(new.pk)
    assert result.ok, result.summary()
    assert result.checkpoints >= 1


def test_a_checkpoint_no_listed_key_signed_stays_invalid_whatever_id_it_names(fresh_tenant, db, settings):
    """Trying the other keys is no way round the signature: a key nobody here lists verifies nothing."""
    origin, _ = seed()
    archive = exported_from_origin(fresh_tenant, settings, origin)
    _, stranger_public = seed()
    destination, _ = seed()
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"dev1:{destination}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = [f"other:{stranger_public}"]
    new = tenant_import(io.BytesIO(archive), slug=f"r{uuid.uuid4().hex[:10]}")
    result = audit_verify(new.pk)
    assert not result.ok and result.problems[0].kind == "signature_invalid"


def test_the_import_command_names_the_keys_to_list(fresh_tenant, db, settings, tmp_path, capsys):
    origin, _ = seed()
    path = tmp_path / "a.zip"
    path.write_bytes(exported_from_origin(fresh_tenant, settings, origin))
    destination, _ = seed()
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"dev-ab12:{destination}"]
    call_command("import_tenant", str(path), "--slug", f"r{uuid.uuid4().hex[:10]}")
    assert "signed by keys this platform does not list (dev1)" in capsys.readouterr().err


def test_an_import_from_this_platform_trusts_its_keys(fresh_tenant, db, settings):
    origin, _ = seed()
    archive = exported_from_origin(fresh_tenant, settings, origin)
    new = tenant_import(io.BytesIO(archive), slug=f"r{uuid.uuid4().hex[:10]}")
    assert new.checkpoint_keys_untrusted == []
    assert audit_verify(new.pk).ok


def _temp_tables_drop() -> None:
    """Two imports in one test transaction: drop the first's ON COMMIT DROP temp tables."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = pg_my_temp_schema()::regnamespace::text")
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE pg_temp."{name}"')


def test_a_trail_passed_on_again_names_the_key_that_signed_its_first_platforms_checkpoints(fresh_tenant, db, settings):
    """Platform A signs as `dev1` (key O); platform B, whose own key is also `dev1` (key D), lists O
    under another id and exports the trail again: its archive says the checkpoints naming `dev1`
    were signed by O, not D. Platform C, which trusts D only, is told to list `dev1`'s key."""
    origin, origin_public = seed()
    archive_a = exported_from_origin(fresh_tenant, settings, origin)

    # Platform B: its own dev1, the origin's key listed under another id.
    b_private, b_public = seed()
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"dev1:{b_private}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = [f"origin-dev1:{origin_public}"]
    on_b = tenant_import(io.BytesIO(archive_a), slug=f"r{uuid.uuid4().hex[:10]}")
    assert audit_verify(on_b.pk).ok
    out = io.BytesIO()
    tenant_export(on_b, out)

    _temp_tables_drop()
    # Platform C: trusts B's key (checked against B's well-known keys), not A's.
    c_private, _ = seed()
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"c1:{c_private}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = [f"platform-b:{b_public}"]
    on_c = tenant_import(io.BytesIO(out.getvalue()), slug=f"r{uuid.uuid4().hex[:10]}")
    result = audit_verify(on_c.pk)
    signature_invalid = [p for p in result.problems if p.kind == "signature_invalid"]
    assert signature_invalid and on_c.checkpoint_keys_untrusted == ["dev1"]

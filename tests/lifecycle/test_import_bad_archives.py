"""Crafted or damaged archives are refused by `tenant_import` with an ArchiveError and a stable
code (a 400 in the console), never a traceback or a 500 (PRODUCT.md: "Bad input gets a clear
error and changes nothing"): an entry asking a newer zip version, an id at its column's largest
value, manifest texts with lone surrogates, an archive on a pipe, more audit sinks than a
workspace may have."""

import contextlib
import io
import json
import uuid

import pytest

from apps.lifecycle.archive import MANIFEST, ArchiveError, archive_verify, tenant_import
from tests.lifecycle.test_archive import archive_of, rewritten, with_member, world
from tests.lifecycle.test_import_console import upload


def slug() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


@pytest.fixture
def acme_archive(acme) -> bytes:
    return archive_of(acme)[0]


def zip_version_bumped(data: bytes) -> bytes:
    """The archive with the manifest's central-directory entry saying it needs zip version 6.4
    (one byte: "version needed to extract" = 64), as a flipped byte or another tool could make it."""
    raw = bytearray(data)
    name = MANIFEST.encode()
    at = 0
    while True:
        at = raw.index(b"PK\x01\x02", at)
        length = int.from_bytes(raw[at + 28 : at + 30], "little")
        if bytes(raw[at + 46 : at + 46 + length]) == name:
            break
        at += 4
    raw[at + 6] = 64  # version needed to extract (central directory header, offset 6)
    return bytes(raw)


def test_an_entry_needing_a_newer_zip_version_is_refused_not_a_traceback(acme_archive, tmp_path):
    bad = zip_version_bumped(acme_archive)
    path = tmp_path / "bad.zip"
    path.write_bytes(bad)
    before = world()
    for source in (io.BytesIO(bad), str(path)):  # the console's upload in memory, a temp file, the CLI
        with pytest.raises(ArchiveError) as refused:  # not zipfile's NotImplementedError ("zip file version 6.4")
            archive_verify(source)
        assert refused.value.code == "archive_damaged"
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(bad), slug=slug())
    assert refused.value.code == "archive_damaged"
    assert world() == before


def test_the_console_answers_an_entry_needing_a_newer_zip_version_with_a_400(acme_archive, operator_client):
    response = upload(operator_client, zip_version_bumped(acme_archive), slug=slug())  # a 500 would raise here
    assert response.status_code == 400


def _group_at(ident: int):
    return lambda content: content + json.dumps({"id": ident, "name": f"g{ident}"}).encode() + b"\n"


@pytest.mark.parametrize("ident", [2**31 - 1], ids=["integer-max"])
def test_a_row_id_at_its_columns_largest_value_is_refused_not_a_database_error(acme_archive, ident):
    """auth_group.id is an integer: `_sequences_reset` computes max(id) + 1 outside `_rows_of`,
    which overflows -> DataError (a 500 in the console, a traceback in the CLI)."""
    crafted = with_member(acme_archive, "schema/auth_group.ndjson", _group_at(ident))
    archive_verify(io.BytesIO(crafted))  # a consistent archive
    before = world()
    try:
        tenant_import(io.BytesIO(crafted), slug=slug())
    except ArchiveError as e:
        assert e.code == "archive_rows_invalid"
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"the import failed with {type(e).__name__}: {e}")
    else:
        return  # imported: fine too (the id was kept)
    assert world() == before


def test_the_console_answers_an_id_at_its_columns_largest_value_with_a_400(acme_archive, operator_client):
    crafted = with_member(acme_archive, "schema/auth_group.ndjson", _group_at(2**31 - 1))
    try:
        response = upload(operator_client, crafted, slug=slug())
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"the import page answered with a 500: {type(e).__name__}: {e}")
    assert response.status_code in (302, 400)


@pytest.mark.parametrize("field", ["slug", "created_at"])
def test_a_manifest_text_with_a_lone_surrogate_is_refused_not_a_traceback(acme_archive, field):
    """`manifest.tenant.slug` and `manifest.created_at` go, unchecked, into the `tenant.imported`
    events' details; JSON's "\\ud800" decodes to a lone surrogate that UTF-8 cannot encode."""

    def change(manifest):
        if field == "slug":
            manifest["tenant"]["slug"] = "\ud800"
        else:
            manifest["created_at"] = "\ud800"

    crafted = rewritten(acme_archive, change)
    before = world()
    try:
        tenant_import(io.BytesIO(crafted), slug=slug())
    except ArchiveError:
        assert world() == before
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"the import failed with {type(e).__name__}: {e}")


def test_the_command_refuses_an_archive_on_a_pipe_with_a_command_error_not_a_traceback(acme_archive):
    """`manage.py import_tenant /dev/stdin --slug x` fed by a pipe: `_opened` seeks outside its
    try (io.UnsupportedOperation: illegal seek), so the command dies with a traceback."""
    import os
    import threading

    from django.core.management import CommandError, call_command

    read, write = os.pipe()

    def feed():
        with os.fdopen(write, "wb") as out, contextlib.suppress(BrokenPipeError):
            out.write(acme_archive)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        call_command("import_tenant", f"/dev/fd/{read}", slug=slug())
    except CommandError:
        pass  # refused clearly (or it could have imported it)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"import_tenant died with {type(e).__name__}: {e}")
    finally:
        os.close(read)
        feeder.join(5)


def _sinks(count: int):
    def change(content: bytes) -> bytes:
        rows = []
        for number in range(count):
            rows.append(
                {
                    "id": 900_000 + number,
                    "tenant_id": 1,
                    "name": f"sink-{number}",
                    "kind": "webhook",
                    "format": "json",
                    "enabled": True,
                    "host": "",
                    "port": None,
                    "tls": True,
                    "url": f"https://siem{number}.example.com/hook",
                    "secret_encrypted": "",
                    "ca_certificate": "",
                    "cursor": 0,
                    "delivered_at": None,
                    "failures": 0,
                    "next_attempt_at": None,
                    "last_error_code": "",
                    "last_error": "",
                    "created_by": "x",
                    "created_at": "2024-01-01T00:00:00Z",
                    "updated_by": "x",
                    "updated_at": "2024-01-01T00:00:00Z",
                }
            )
        return content + b"".join(json.dumps(r).encode() + b"\n" for r in rows)

    return change


def test_an_archive_cannot_bring_more_audit_sinks_than_a_workspace_may_have(acme_archive):
    """apps/audit/delivery.py: MAX_SINKS = 10 per tenant ("A workspace has at most 10 audit
    sinks"); the import takes any number, each delivered to on every beat pass."""
    from apps.audit.delivery import MAX_SINKS
    from apps.audit.models import AuditSink
    from apps.audit.scope import rls_scope

    crafted = with_member(acme_archive, "public/audit_auditsink.ndjson", _sinks(MAX_SINKS * 5))
    try:
        new = tenant_import(io.BytesIO(crafted), slug=slug())
    except ArchiveError:
        return
    with rls_scope(new.pk):
        sinks = AuditSink.objects.filter(tenant_id=new.pk).count()
    assert sinks <= MAX_SINKS, f"the imported workspace has {sinks} audit sinks (at most {MAX_SINKS})"

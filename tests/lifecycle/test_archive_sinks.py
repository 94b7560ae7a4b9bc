"""Audit sinks an archive brings are held to the rules `audit_sink_set` holds every sink to
(apps/audit/delivery.py `sinks_imported_problem`): an archive is checksummed, not signed, and a
crafted one's sinks were imported as written, enabled (found by a review)."""

import io
import json
import uuid
from datetime import UTC, datetime

import pytest

from apps.lifecycle.archive import ArchiveError, tenant_import
from apps.tenants.models import Tenant
from tests.lifecycle.test_archive import archive_of, public_rows, with_member


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _sink(**change) -> dict:
    now = datetime.now(UTC).isoformat()
    row = {
        "id": 1, "tenant_id": 1, "name": "siem", "kind": "webhook", "format": "jsonl", "enabled": True,
        "host": "", "port": None, "tls": True, "url": "https://siem.example.com/hook", "secret_encrypted": "",
        "ca_certificate": "", "cursor": 0, "delivered_at": None, "failures": 0, "next_attempt_at": None,
        "last_error_code": "", "last_error": "", "created_by": "x", "created_at": now, "updated_by": "x",
        "updated_at": now,
    }  # fmt: skip
    return row | change


def _with_sink(data: bytes, row: dict) -> bytes:
    return with_member(data, "public/audit_auditsink.ndjson", lambda _: json.dumps(row).encode() + b"\n")


def test_an_imported_sink_whose_name_no_sink_may_have_cannot_be_deleted_by_the_workspaces_owner(acme):
    """A crafted archive's sink named `SIEM.Exfil` (uppercase and a dot: `audit_sink_set` refuses
    such a name, `name_invalid`) is refused, and nothing imported. It was imported enabled,
    delivering the trail to the archive's receiver, and every management path looks a sink up by
    a name it deems possible: the copy's owner could not delete, edit or disable it."""
    crafted = _with_sink(archive_of(acme)[0], _sink(name="SIEM.Exfil"))
    slug = f"r{uuid.uuid4().hex[:10]}"
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(crafted), slug=slug)
    assert refused.value.code == "archive_rows_invalid"
    assert "SIEM.Exfil" in refused.value.message and "name" in refused.value.message
    assert not Tenant.objects.filter(slug=slug).exists()


@pytest.mark.parametrize(
    "change",
    [
        {"url": "https://user:password@siem.example.com/hook"},  # url_invalid: no credentials in a URL
        {"cursor": 2**62},  # cursor_invalid: past the chain's head, nothing is ever delivered
    ],
    ids=["credentials-in-url", "cursor-past-head"],
)
def test_an_imported_sink_the_sink_rules_refuse_is_not_imported_as_it_is(acme, change):
    """`audit_sink_set` refuses each of these values, and so does the import
    (`archive_rows_invalid`), as it does limit overrides, networks, retention policies and
    catalog counters the platform would never write. Each was imported, enabled."""
    crafted = _with_sink(archive_of(acme)[0], _sink(**change))
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(crafted), slug=f"r{uuid.uuid4().hex[:10]}")
    assert refused.value.code == "archive_rows_invalid"


def test_an_archive_with_a_sink_the_rules_allow_is_imported_with_it(acme):
    """The control: a sink the rules allow comes along."""
    crafted = _with_sink(archive_of(acme)[0], _sink())
    new = tenant_import(io.BytesIO(crafted), slug=f"r{uuid.uuid4().hex[:10]}")
    assert [s["name"] for s in public_rows(new.pk, "audit_auditsink")] == ["siem"]

"""The private networks a workspace's http tools (and its providers, SSO calls and sinks) may
reach are an operator's grant (docs/runs.md): a private address may be the platform's own. An
archive is its owners' to download and edit (its checksums are recomputable), and another
platform's networks are not this one's, so an import leaves the archive's networks out unless
the operator keeps them (docs/export.md), and no list that admits every address is taken, even
in parts."""

import contextlib
import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.lifecycle.archive import ArchiveError, tenant_import
from apps.runs.engine import http_policy
from apps.tenants.models import Tenant
from foundry.runtime.network import FetchError, fetch
from tests.conftest import audit_events
from tests.lifecycle.test_archive import archive_of, with_member
from tests.lifecycle.test_archive_bad_input import tenant_row_edit
from tests.runs.conftest import ledger  # noqa: F401 — a fixture

EVERY_ADDRESS_IN_HALVES = ["0.0.0.0/1", "128.0.0.0/1"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def archive_allowing(acme, networks: list[str]) -> bytes:
    return with_member(
        archive_of(acme)[0],
        "public/tenants_tenant.ndjson",
        tenant_row_edit(lambda row: row.update(http_allowed_networks=networks)),
    )


def slug() -> str:
    return f"n{uuid.uuid4().hex[:10]}"


def loopback_reached(tenant: Tenant, ledger) -> bool:  # noqa: F811
    """Whether the workspace's http tools (the policy a run gives them, the fetch they make) reach
    a real service on 127.0.0.1."""
    policy = http_policy(Tenant.objects.get(pk=tenant.pk).http_allowed_networks)
    with contextlib.suppress(FetchError):  # refused: nothing booked
        fetch("POST", f"http://127.0.0.1:{ledger.port}/entries/1", hosts=["127.0.0.1"], timeout=5, policy=policy)
    return bool(ledger.booked)


def test_an_import_leaves_the_archives_networks_out_and_names_them(acme, ledger, settings):  # noqa: F811
    """Before: an owner who edited their archive to allow 127.0.0.0/8 (or the platform's own
    10.x networks) and had it imported got agents reaching the platform's private services."""
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    new = tenant_import(io.BytesIO(archive_allowing(acme, ["127.0.0.0/8", "10.20.0.0/16"])), slug=slug())
    assert Tenant.objects.get(pk=new.pk).http_allowed_networks == []
    assert new.networks_left == ["127.0.0.0/8", "10.20.0.0/16"]
    [event] = audit_events("public", action="tenant.imported", target_id=str(new.pk))
    assert event.data["networks_left"] == ["127.0.0.0/8", "10.20.0.0/16"]
    assert not loopback_reached(new, ledger)


def test_an_operator_who_keeps_them_gets_them(acme, ledger, settings):  # noqa: F811
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    archive = archive_allowing(acme, ["127.0.0.0/8"])
    new = tenant_import(io.BytesIO(archive), slug=slug(), keep_networks=True)
    assert Tenant.objects.get(pk=new.pk).http_allowed_networks == ["127.0.0.0/8"] and new.networks_left == []
    assert loopback_reached(new, ledger)


def test_networks_admitting_every_address_in_halves_are_refused_even_when_kept(acme, ledger, settings):  # noqa: F811
    """Only a literal prefix of 0 was refused: 0.0.0.0/1 + 128.0.0.0/1 opened loopback and
    169.254.169.254 to the imported workspace."""
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    before = Tenant.objects.count()
    with pytest.raises(ArchiveError, match="admit every address") as refused:
        tenant_import(io.BytesIO(archive_allowing(acme, EVERY_ADDRESS_IN_HALVES)), slug=slug(), keep_networks=True)
    assert refused.value.code == "archive_rows_invalid"
    assert Tenant.objects.count() == before and ledger.booked == []


@pytest.mark.parametrize(
    "halves", [EVERY_ADDRESS_IN_HALVES, ["::/1", "8000::/1"], ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]]
)
def test_the_operators_command_refuses_them_too(acme, halves):
    with pytest.raises(CommandError, match="admit every address"):
        call_command("tenant_http_networks", acme.slug, *[f"--allow={each}" for each in halves])
    assert Tenant.objects.get(pk=acme.pk).http_allowed_networks == acme.http_allowed_networks


def test_the_import_command_says_which_were_left_out(acme, tmp_path):
    path = tmp_path / "acme.zip"
    path.write_bytes(archive_allowing(acme, ["10.20.0.0/16"]))
    err = io.StringIO()
    call_command("import_tenant", str(path), slug=slug(), stdout=io.StringIO(), stderr=err)
    assert "10.20.0.0/16: left out" in err.getvalue() and "tenant_http_networks" in err.getvalue()


@pytest.mark.parametrize("keep", [True, False])
def test_the_console_keeps_them_when_ticked_and_says_so_when_not(acme, operator_client, keep):
    upload = SimpleUploadedFile("acme.zip", archive_allowing(acme, ["10.20.0.0/16"]), content_type="application/zip")
    new = slug()
    form = {"archive": upload, "slug": new, **({"keep_networks": "on"} if keep else {})}
    response = operator_client.post("/tenants/import/", form, follow=True)
    assert response.status_code == 200
    assert Tenant.objects.get(slug=new).http_allowed_networks == (["10.20.0.0/16"] if keep else [])
    assert ("10.20.0.0/16: left out" in response.content.decode()) is not keep

"""An owner's export holds members' password hashes (docs/export.md): only an owner downloads it.
An admin may export the workspace (every password unusable in theirs), but not take an owner's
archive and crack the owners' hashes offline: it was listed to admins with its link, and the link
handed them the archive."""

import io
import json
import zipfile

import pytest
from django_tenants.utils import schema_context

from apps.lifecycle.exports import export_run
from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _usable_passwords(body: bytes) -> list[str]:
    rows = zipfile.ZipFile(io.BytesIO(body)).read("schema/accounts_user.ndjson").decode().splitlines()
    return [password for row in rows if not (password := json.loads(row)["password"]).startswith("!")]


def test_only_an_owner_downloads_an_export_holding_password_hashes(acme):
    owner = api(acme, issue(acme, role="owner"))
    export_id = owner.post("/api/v1/exports", content_type="application/json").json()["id"]
    with schema_context(acme.schema_name):
        assert export_run(export_id=export_id) == "succeeded"
    link = owner.get(f"/api/v1/exports/{export_id}").json()["download_url"]
    assert link

    admin = client_for(acme, "admin@acme.test")
    detail = admin.get(f"/api/v1/exports/{export_id}").json()
    assert (detail["password_hashes"], detail["download_url"]) == (True, None)
    listed = admin.get("/api/v1/exports").json()["exports"]
    assert [e["download_url"] for e in listed if e["id"] == export_id] == [None]
    assert 'data-testid="export-download"' not in admin.get("/settings/data-export/").content.decode()

    console_link = link.replace("/api/v1/exports/", "/settings/data-export/", 1).replace("/download?", "/download/?")
    refused = [admin.get(link), admin.get(console_link)]
    assert [r.status_code for r in refused] == [403, 403]
    assert refused[0].json()["error"]["code"] == "export_owners_only"
    events = audit_events("acme", action="export.download_refused")
    assert [(e.data["reason"], e.outcome) for e in events[-2:]] == [("owners_only", "denied")] * 2

    response = owner.get(link)
    assert response.status_code == 200
    assert _usable_passwords(b"".join(response.streaming_content))  # the owner's archive keeps them

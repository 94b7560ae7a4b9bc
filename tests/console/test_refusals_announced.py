"""A refusal of what was asked is announced (WCAG 2.1 3.3.1, 4.1.3): the page's title says
"Error: " and the refusal is in an alert region, for a service's refusal as for a refused form."""

import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from tests.conftest import client_for
from tests.lifecycle.test_export_lost_polls import worker_holding


def _announced(html: str, code: str) -> bool:
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    alerts = re.findall(r'<(div|section|p)\b[^>]*role="alert"[^>]*>(.*?)</\1>', html, re.S)
    return title.startswith("Error: ") and any(code in text for _, text in alerts)


def test_operator_import_page_refused_archive_is_announced(operator_client):
    """Operator console, Import a workspace: an archive refused (not a zip)."""
    archive = SimpleUploadedFile("a.zip", b"junk" * 100)
    response = operator_client.post("/tenants/import/", {"archive": archive, "slug": "newco", "name": "New Co"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="import-error"' in html
    assert _announced(html, "archive_not_an_archive")


def test_data_export_page_refused_start_is_announced(acme):
    """Workspace console, Data export: a start refused while an export is under way (409)."""
    from apps.lifecycle.models import Export

    with schema_context("acme"):
        Export.objects.create(status="queued", created_by="owner@acme.test")
    response = client_for(acme, "owner@acme.test").post("/settings/data-export/")
    assert response.status_code == 409
    html = response.content.decode()
    assert 'data-testid="export-error"' in html
    assert _announced(html, "export_in_progress")


def test_the_export_poll_is_204_while_nothing_changed_and_says_a_new_status_once(acme):
    """Data export's poll: 204 while the rows are as the page shows them; when an export's status
    changes, the rows and the live region's new words (out of band); when only its progress
    does, the rows alone."""
    from apps.lifecycle.models import Export

    with schema_context("acme"):
        export = Export.objects.create(status="queued", created_by="owner@acme.test")
    owner = client_for(acme, "owner@acme.test")
    page = owner.get("/settings/data-export/").content.decode()
    version, said = re.search(r"rows/\?v=(\w+)&amp;s=(\w+)", page).groups()
    assert owner.get(f"/settings/data-export/rows/?v={version}&s={said}").status_code == 204

    with worker_holding(acme, export):  # else it is failed as lost when the rows are read
        with schema_context("acme"):
            Export.objects.filter(pk=export.pk).update(status="running", rows_total=10, rows_done=1)
        running = owner.get(f"/settings/data-export/rows/?v={version}&s={said}").content.decode()
        assert '<p id="export-announce" hx-swap-oob="true">Latest export: running.</p>' in running
        version, said = re.search(r"rows/\?v=(\w+)&amp;s=(\w+)", running).groups()

        with schema_context("acme"):
            Export.objects.filter(pk=export.pk).update(rows_done=5)
        progressed = owner.get(f"/settings/data-export/rows/?v={version}&s={said}")
        assert progressed.status_code == 200 and "export-announce" not in progressed.content.decode()

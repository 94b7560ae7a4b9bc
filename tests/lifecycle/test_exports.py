"""Export jobs: started from the API or the console, made by a real Celery worker, followed by
their progress, downloaded through an expiring signed link; who may, and that no workspace
reaches another's exports."""

import hashlib
import io
import json
import time
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from django.core import signing
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.lifecycle.archive import archive_verify
from apps.lifecycle.exports import QUEUED_LOST_AFTER, _Progress, export_link_signature, export_run
from apps.lifecycle.models import Export
from tests import settings as test_settings
from tests.api.conftest import api, issue
from tests.conftest import PASSWORD, audit_events, client_for, test_database_url


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    """Archives of this test's own (the worker test uses the session's media, and cleans up)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def start(client: Client):
    return client.post("/api/v1/exports", content_type="application/json")


def exports_of(tenant) -> list[Export]:
    with schema_context(tenant.schema_name):
        return list(Export.objects.order_by("created_at"))


def run_here(tenant, export_id) -> Export:
    """Do the worker's job in this process (inside the test's transaction)."""
    with schema_context(tenant.schema_name):
        assert export_run(export_id=str(export_id)) == Export.Status.SUCCEEDED
        return Export.objects.get(pk=export_id)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def emails_in(data: bytes) -> set[str]:
    rows = members(data)["schema/accounts_user.ndjson"].decode().splitlines()
    return {json.loads(row)["email"] for row in rows}


def download(client: Client, detail: dict):
    response = client.get(detail["download_url"])
    body = b"".join(response.streaming_content) if response.status_code == 200 else response.content
    return response, body


def link_parts(url: str) -> tuple[str, str]:
    """(path, signature) of a download link."""
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)["signature"][0]


@pytest.fixture
def acme_owner(acme) -> Client:
    return api(acme, issue(acme, role="owner"))


@pytest.fixture
def finished(acme, acme_owner) -> dict:
    """A succeeded export of acme, made in this process; its API representation."""
    export_id = start(acme_owner).json()["id"]
    run_here(acme, export_id)
    return acme_owner.get(f"/api/v1/exports/{export_id}").json()


# --- starting and following --------------------------------------------------------------------


def test_it_starts_an_export_and_answers_202_with_the_queued_job(acme, acme_owner):
    response = start(acme_owner)
    assert response.status_code == 202, response.content
    job = response.json()
    assert (job["status"], job["rows_done"], job["rows_total"], job["download_url"], job["error"]) == (
        "queued",
        0,
        0,
        None,
        None,
    )
    assert [str(e.pk) for e in exports_of(acme)] == [job["id"]]
    assert job["created_by"].startswith("API token ")
    [event] = audit_events(acme.schema_name, action="export.started")
    assert event.target_id == job["id"]


def test_a_second_start_while_one_is_under_way_is_refused_and_creates_nothing(acme, acme_owner):
    first = start(acme_owner).json()
    response = start(acme_owner)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "export_in_progress"
    assert [str(e.pk) for e in exports_of(acme)] == [first["id"]]
    assert len(audit_events(acme.schema_name, action="export.started")) == 1


def test_an_export_whose_task_was_lost_gives_way_to_a_new_one(acme, acme_owner):
    lost = start(acme_owner).json()["id"]
    with schema_context(acme.schema_name):
        Export.objects.filter(pk=lost).update(created_at=timezone.now() - QUEUED_LOST_AFTER - timedelta(seconds=1))
    assert start(acme_owner).status_code == 202
    old = acme_owner.get(f"/api/v1/exports/{lost}").json()
    assert old["status"] == "failed" and old["error"]["code"] == "export_lost"
    # A running export whose worker holds no lock (it died) is lost too; a copy of its task does nothing now.
    with schema_context(acme.schema_name):
        Export.objects.exclude(pk=lost).update(status=Export.Status.RUNNING)
    assert start(acme_owner).status_code == 202
    with schema_context(acme.schema_name):
        assert export_run(export_id=lost) == "gone"
    assert [e.status for e in exports_of(acme)] == ["failed", "failed", "queued"]


def test_a_finished_export_has_its_counts_checksum_and_a_link_that_expires(acme, finished, media):
    assert finished["status"] == "succeeded"
    assert finished["rows_total"] == finished["rows_done"] > 0
    stored = media / "exports" / acme.schema_name / f"{finished['id']}.zip"
    data = stored.read_bytes()
    assert finished["size"] == len(data)
    assert finished["sha256"] == hashlib.sha256(data).hexdigest()
    lasting = timezone.datetime.fromisoformat(finished["expires_at"]) - timezone.datetime.fromisoformat(
        finished["finished_at"]
    )
    assert lasting == timedelta(hours=24)
    assert finished["download_url"].startswith(f"/api/v1/exports/{finished['id']}/download?signature=")
    [event] = audit_events(acme.schema_name, action="export.finished")
    assert event.data["status"] == "succeeded" and event.data["sha256"] == finished["sha256"]


def test_a_failed_export_says_why_in_a_code_never_a_traceback(acme, acme_owner, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("storage cannot write below a file")
    settings.MEDIA_ROOT = str(blocker)
    export_id = start(acme_owner).json()["id"]
    with schema_context(acme.schema_name):
        assert export_run(export_id=export_id) == Export.Status.FAILED
    job = acme_owner.get(f"/api/v1/exports/{export_id}").json()
    assert job["status"] == "failed" and job["download_url"] is None and job["finished_at"]
    assert job["error"] == {"code": "export_failed", "message": "The export failed on our side; it has been logged."}
    [event] = audit_events(acme.schema_name, action="export.finished")
    assert (event.outcome, event.data["error"]) == ("failure", "export_failed")
    # A failed export is not under way: another may start.
    assert start(acme_owner).status_code == 202


def test_the_list_shows_the_workspace_s_exports_newest_first(acme, acme_owner):
    first = start(acme_owner).json()["id"]
    run_here(acme, first)
    second = start(acme_owner).json()["id"]
    listed = acme_owner.get("/api/v1/exports").json()
    assert [e["id"] for e in listed["exports"]] == [second, first]
    only = acme_owner.get("/api/v1/exports", {"filter": "status = succeeded"}).json()
    assert [e["id"] for e in only["exports"]] == [first]


# --- downloading -------------------------------------------------------------------------------


def test_the_link_downloads_the_archive_which_verifies_and_holds_this_workspace(acme, acme_owner, finished):
    response, body = download(acme_owner, finished)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="acme-')
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-SHA256"] == finished["sha256"]
    manifest = archive_verify(io.BytesIO(body))
    assert manifest["tenant"]["slug"] == "acme"
    assert {"owner@acme.test", "viewer@acme.test"} <= emails_in(body)
    assert "owner@globex.test" not in emails_in(body)
    assert b"schema/lifecycle_export.ndjson" not in body  # export jobs are not the workspace's data
    [event] = audit_events(acme.schema_name, action="export.downloaded")
    assert event.target_id == finished["id"]


def test_an_expired_link_is_gone(acme, acme_owner, finished):
    with schema_context(acme.schema_name):
        Export.objects.filter(pk=finished["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = acme_owner.get(finished["download_url"])
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "export_expired"
    assert acme_owner.get(f"/api/v1/exports/{finished['id']}").json()["download_url"] is None
    assert not audit_events(acme.schema_name, action="export.downloaded")


def test_a_link_whose_expiry_was_extended_by_hand_still_expires(acme, acme_owner, finished):
    """The expiry is signed: moving the row's date forward does not revive an old link."""
    with schema_context(acme.schema_name):
        export = Export.objects.get(pk=finished["id"])
        export.expires_at = timezone.now() - timedelta(seconds=5)
        old_link = f"/api/v1/exports/{export.pk}/download?signature={export_link_signature(export)}"
        Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() + timedelta(hours=1))
    response = acme_owner.get(old_link)
    assert response.status_code == 410 and response.json()["error"]["code"] == "export_expired"


def test_a_tampered_or_missing_signature_is_refused(acme, acme_owner, finished):
    path, signature = link_parts(finished["download_url"])
    payload, _, mac = signature.rpartition(":")
    for bad in (f"{payload}:{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}", "", "garbage"):
        response = acme_owner.get(path, {"signature": bad})
        assert response.status_code == 403, bad
        assert response.json()["error"]["code"] == "link_invalid"
    assert acme_owner.get(path).json()["error"]["code"] == "link_invalid"
    forged = signing.dumps([finished["id"], "acme", 2**40], salt="another.salt", compress=False)
    assert acme_owner.get(path, {"signature": forged}).status_code == 403
    assert not audit_events(acme.schema_name, action="export.downloaded")


def test_a_link_of_one_export_does_not_open_another(acme, acme_owner, finished):
    other = start(acme_owner).json()["id"]
    run_here(acme, other)
    signature = link_parts(finished["download_url"])[1]
    response = acme_owner.get(f"/api/v1/exports/{other}/download", {"signature": signature})
    assert response.status_code == 404


def test_bad_ids_are_404(acme, acme_owner, finished):
    for path in ("/api/v1/exports/nope", "/api/v1/exports/123", "/api/v1/exports/nope/download"):
        assert acme_owner.get(path).status_code == 404, path
    unknown = acme_owner.get(f"/api/v1/exports/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "export_not_found"
    signature = link_parts(finished["download_url"])[1]
    owner = client_for(acme, "owner@acme.test")
    for export_id in ("nope", "123", uuid.uuid4()):
        response = owner.get(f"/settings/data-export/{export_id}/download/", {"signature": signature})
        assert response.status_code == 404, export_id


# --- who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator", "developer"])
def test_members_below_admin_are_refused_everything(acme, finished, role):
    client = api(acme, issue(acme, role=role))
    assert start(client).status_code == 403
    assert client.get("/api/v1/exports").status_code == 403
    assert client.get(f"/api/v1/exports/{finished['id']}").status_code == 403
    assert client.get(finished["download_url"]).status_code == 403
    assert len(exports_of(acme)) == 1


def test_an_admin_may_and_a_read_only_token_may_follow_but_not_start(acme, finished):
    admin = client_for(acme, "admin@acme.test")
    assert admin.get(f"/api/v1/exports/{finished['id']}").status_code == 200
    reader = api(acme, issue(acme, role="owner", scopes=("read",)))
    assert reader.get(f"/api/v1/exports/{finished['id']}").status_code == 200
    assert download(reader, finished)[0].status_code == 200
    refused = start(reader)
    assert refused.status_code == 403 and len(exports_of(acme)) == 1


def test_anonymous_callers_are_asked_to_authenticate(acme, finished):
    anonymous = api(acme)
    assert start(anonymous).status_code == 401
    assert anonymous.get("/api/v1/exports").status_code == 401
    assert anonymous.get(finished["download_url"]).status_code == 401
    page = client_for(acme).get("/settings/data-export/")
    assert page.status_code == 302 and page["Location"].startswith("/login/")
    console_link = (
        finished["download_url"]
        .replace("/api/v1/exports/", "/settings/data-export/")
        .replace("/download?", "/download/?")
    )
    assert client_for(acme).get(console_link).status_code == 302


# --- isolation ---------------------------------------------------------------------------------


def test_another_workspace_cannot_list_see_or_download_acme_s_exports(acme, globex, finished):
    globex_owner = api(globex, issue(globex, role="owner"))
    assert globex_owner.get("/api/v1/exports").json()["exports"] == []
    assert globex_owner.get(f"/api/v1/exports/{finished['id']}").status_code == 404
    # Acme's signed link, presented on globex's host by globex's owner: not globex's, so nothing there.
    response = globex_owner.get(finished["download_url"])
    assert response.status_code == 404
    # And acme's token means nothing on globex's host.
    acme_token_on_globex = Client(HTTP_HOST="globex.localhost", HTTP_AUTHORIZATION=f"Bearer {issue(acme)}")
    assert acme_token_on_globex.get(finished["download_url"]).status_code == 401
    assert not audit_events(globex.schema_name, action="export.downloaded")


def test_a_link_signed_for_globex_naming_acme_s_export_opens_nothing_on_acme(acme, globex, acme_owner, finished):
    """A link is bound to its workspace's schema: one made on globex cannot name acme's export."""
    with schema_context(globex.schema_name):
        export = Export(pk=finished["id"], expires_at=timezone.now() + timedelta(hours=1))
        assert connection.schema_name == globex.schema_name
        signature = export_link_signature(export)
    response = acme_owner.get(f"/api/v1/exports/{finished['id']}/download", {"signature": signature})
    assert response.status_code == 404


def test_globex_s_export_holds_none_of_acme_s_rows(acme, globex, media):
    globex_owner = api(globex, issue(globex, role="owner"))
    job = start(globex_owner).json()
    run_here(globex, job["id"])
    body = download(globex_owner, globex_owner.get(f"/api/v1/exports/{job['id']}").json())[1]
    assert archive_verify(io.BytesIO(body))["tenant"]["slug"] == "globex"
    assert emails_in(body) == {"owner@globex.test"}
    for name, data in members(body).items():
        rows = [json.loads(line) for line in data.decode().splitlines()] if name.startswith("public/") else []
        for row in rows:
            owner = row["id"] if name == "public/tenants_tenant.ndjson" else row.get("tenant_id", globex.pk)
            assert owner == globex.pk, (name, row)
    assert not (media / "exports" / acme.schema_name).exists()


# --- the console -------------------------------------------------------------------------------


def test_the_console_page_starts_an_export_and_polls_while_it_runs(acme):
    owner = client_for(acme, "owner@acme.test")
    page = owner.get("/settings/data-export/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<a href="/settings/data-export/" aria-current="page">Data export</a>' in html
    assert "No exports yet" in html and 'hx-trigger="every 1s"' not in html
    response = owner.post("/settings/data-export/")
    assert response.status_code == 302 and response["Location"] == "/settings/data-export/"
    [export] = exports_of(acme)
    rows = owner.get("/settings/data-export/rows/").content.decode()
    assert f'data-export="{export.pk}" data-status="queued"' in rows and 'hx-trigger="every 1s"' in rows
    again = owner.post("/settings/data-export/")
    assert again.status_code == 409 and "export_in_progress" in again.content.decode()
    assert len(exports_of(acme)) == 1
    run_here(acme, export.pk)
    rows = owner.get("/settings/data-export/rows/").content.decode()
    assert 'data-status="succeeded"' in rows and 'hx-trigger="every 1s"' not in rows
    link = rows.split('href="/settings/data-export/', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    link = "/settings/data-export/" + link
    assert link.startswith(f"/settings/data-export/{export.pk}/download/?signature=")
    response = owner.get(link)
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    assert archive_verify(io.BytesIO(b"".join(response.streaming_content)))["tenant"]["slug"] == "acme"


def test_the_console_refuses_members_below_admin_and_other_workspaces(acme, globex, finished):
    viewer = client_for(acme, "viewer@acme.test")
    assert viewer.get("/settings/data-export/").status_code == 403
    assert viewer.post("/settings/data-export/").status_code == 403
    assert viewer.get("/settings/data-export/rows/").status_code == 403
    console_link = (
        finished["download_url"]
        .replace("/api/v1/exports/", "/settings/data-export/")
        .replace("/download?", "/download/?")
    )
    assert viewer.get(console_link).status_code == 403
    assert client_for(acme, "owner@acme.test").get(console_link).status_code == 200
    # An owner's export holds password hashes: an admin may not take it (test_export_password_hashes.py).
    assert client_for(acme, "admin@acme.test").get(console_link).status_code == 403
    assert client_for(globex, "owner@globex.test").get(console_link).status_code == 404
    assert len(exports_of(acme)) == 1 and exports_of(globex) == []
    assert "Data export" not in viewer.get("/").content.decode()


def test_progress_is_seen_by_others_while_the_export_holds_its_snapshot_open(fresh_tenant, django_db_blocker):
    table = f'"{fresh_tenant.schema_name}".lifecycle_export'
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        export = Export.objects.create(created_by="test")
        progress = _Progress(fresh_tenant.schema_name, export.pk)
        try:
            with transaction.atomic(), psycopg.connect(test_database_url(), autocommit=True) as onlooker:
                assert Export.objects.filter(pk=export.pk).exists()  # reading in a transaction of its own
                read = f"SELECT rows_done, rows_total FROM {table} WHERE id = %s"
                progress(3, 10)
                assert onlooker.execute(read, [export.pk]).fetchone() == (3, 10)
                progress(4, 10)  # within PROGRESS_EVERY_SECONDS of the last: not written
                assert onlooker.execute(read, [export.pk]).fetchone() == (3, 10)
                progress(10, 10)  # the end is always written
                assert onlooker.execute(read, [export.pk]).fetchone() == (10, 10)
        finally:
            progress.close()
            Export.objects.filter(pk=export.pk).delete()


# --- with a real worker ------------------------------------------------------------------------


def test_a_worker_makes_the_export_the_api_started_and_it_downloads_whole(
    celery_worker_process, fresh_tenant, django_db_blocker, settings
):
    settings.MEDIA_ROOT = test_settings.MEDIA_ROOT  # the worker's storage (tests/settings.py)
    with django_db_blocker.unblock():
        with schema_context(fresh_tenant.schema_name):
            User.objects.create_user(f"exported@{fresh_tenant.slug}.test", PASSWORD, role="developer")
        client = api(fresh_tenant, issue(fresh_tenant, role="owner"))
        job = start(client).json()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            detail = client.get(f"/api/v1/exports/{job['id']}").json()
            if detail["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        assert detail["status"] == "succeeded", detail
        assert detail["rows_done"] == detail["rows_total"] > 0
        try:
            response, body = download(client, detail)
            assert response.status_code == 200
            manifest = archive_verify(io.BytesIO(body))
            assert manifest["tenant"]["slug"] == fresh_tenant.slug and manifest["rows"] == detail["rows_total"]
            assert emails_in(body) == {
                f"owner@{fresh_tenant.slug}.test",
                f"viewer@{fresh_tenant.slug}.test",
                f"exported@{fresh_tenant.slug}.test",
            }
            assert "owner@acme.test" not in body.decode("latin-1")
            with schema_context(fresh_tenant.schema_name):
                assert Export.objects.get(pk=job["id"]).file == f"exports/{fresh_tenant.schema_name}/{job['id']}.zip"
            assert [e.action for e in audit_events(fresh_tenant.schema_name, action__startswith="export.")] == [
                "export.started",
                "export.finished",
                "export.downloaded",
            ]
        finally:
            default_storage.delete(f"exports/{fresh_tenant.schema_name}/{job['id']}.zip")


def test_a_head_request_on_a_download_link_is_not_recorded_as_a_download(acme, acme_owner, finished):
    """A HEAD (a link checker, a client's preflight) takes no archive away: API and console."""
    console = (
        finished["download_url"]
        .replace("/api/v1/exports/", "/settings/data-export/")
        .replace("/download?", "/download/?")
    )
    assert acme_owner.head(finished["download_url"]).status_code == 200
    assert client_for(acme, "owner@acme.test").head(console).status_code == 200
    assert audit_events(acme.schema_name, action="export.downloaded") == []
    assert acme_owner.get(finished["download_url"]).status_code == 200
    assert len(audit_events(acme.schema_name, action="export.downloaded")) == 1


def test_a_failed_export_job_records_no_tenant_exported(acme, acme_owner, settings, tmp_path):
    """`tenant.exported` says the workspace's data left the platform: recorded once the archive
    is stored and the export succeeded, never for a job that failed (it was, by the archive
    writer, before the job's storage step)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("storage cannot write below a file")
    settings.MEDIA_ROOT = str(blocker / "media")
    export_id = start(acme_owner).json()["id"]
    with schema_context(acme.schema_name):
        assert export_run(export_id=str(export_id)) == Export.Status.FAILED
    assert [e.outcome for e in audit_events(acme.schema_name, action="export.finished")] == ["failure"]
    assert audit_events(acme.schema_name, action="tenant.exported") == []
    settings.MEDIA_ROOT = str(tmp_path / "media")
    export_id = start(acme_owner).json()["id"]
    assert run_here(acme, export_id).status == Export.Status.SUCCEEDED
    (exported,) = audit_events(acme.schema_name, action="tenant.exported")
    (finished,) = [e for e in audit_events(acme.schema_name, action="export.finished") if e.outcome == "success"]
    assert exported.actor_id == finished.actor_id == "service:lifecycle.export"  # one job, one worker


def test_a_row_naming_a_file_outside_its_own_archive_downloads_nothing(acme, globex, acme_owner, finished):
    """Only the export's own archive (`exports/<schema>/<id>.zip`) is served: a row edited to name
    another file under the workspace's prefix, through `..` to another workspace's, opens nothing."""
    other = default_storage.save(f"exports/{globex.schema_name}/theirs.zip", io.BytesIO(b"globex's archive"))
    with schema_context(acme.schema_name):
        Export.objects.filter(pk=finished["id"]).update(
            file=f"exports/{acme.schema_name}/../{other[len('exports/') :]}"
        )
    response, body = download(acme_owner, finished)
    assert response.status_code == 404 and b"globex" not in body


class WorkerKilled(BaseException):
    """Stands for the worker process dying (SIGKILL, out of memory, a hard time limit): no
    `except Exception` runs, the open transaction is rolled back, files already stored stay."""


def test_an_archive_stored_by_a_worker_that_died_goes_with_its_export(acme, acme_owner, media, monkeypatch):
    """A worker that dies after storing the archive but before the row names it (the same
    transaction) leaves the archive and a row still `running`. The next start gives that export up
    as lost and deletes its archive (by its fixed name); retention deletes every export's, named
    by the row or not: no archive outlives its row (docs/export-jobs.md, docs/retention.md)."""
    from apps.lifecycle import exports as exports_module
    from apps.lifecycle.retention import retention_apply, retention_policy_set

    first = start(acme_owner).json()["id"]

    def die(*args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(exports_module, "tenant_exported_record", die)  # after the save, before the commit
    with schema_context(acme.schema_name), pytest.raises(WorkerKilled):
        export_run(export_id=first)
    monkeypatch.undo()
    orphan = media / "exports" / acme.schema_name / f"{first}.zip"
    assert orphan.exists()  # the dead worker's archive, named by no row
    with schema_context(acme.schema_name):
        assert Export.objects.get(pk=first).status == Export.Status.RUNNING

    # The dead worker's lock is gone: a new start gives the old export up as lost, and its archive.
    second = start(acme_owner).json()["id"]
    with schema_context(acme.schema_name):
        lost = Export.objects.get(pk=first)
        assert (lost.status, lost.error.split(":")[0]) == (Export.Status.FAILED, "export_lost")
    assert not orphan.exists()

    # Stored again by hand (a worker that died while the lost export was being given up): retention
    # takes it with its row all the same.
    orphan.write_bytes(b"left behind")
    run_here(acme, second)
    with schema_context(acme.schema_name):
        retention_policy_set(actor="test", exports_days=1)
    counts = retention_apply(tenant=acme, now=timezone.now() + timedelta(days=2))
    assert counts["exports"] == 2
    with schema_context(acme.schema_name):
        assert not Export.objects.exists()
    assert sorted(p.name for p in orphan.parent.glob("*")) == []


def _passwords(data: bytes) -> list[str]:
    rows = members(data)["schema/accounts_user.ndjson"].decode().splitlines()
    return [json.loads(row)["password"] for row in rows]


def test_only_an_owner_s_export_holds_password_hashes(acme, acme_owner):
    """A password hash can be cracked offline: an admin, who may export the workspace but may not
    become an owner, gets an archive whose passwords are unusable (and says so in the manifest's
    `secrets_omitted`); an owner's export keeps members signing in after an import."""
    from django.contrib.auth.hashers import identify_hasher

    admin = api(acme, issue(acme, role="admin"))
    archives = {}
    for who, client in (("owner", acme_owner), ("admin", admin)):
        export_id = start(client).json()["id"]
        run_here(acme, export_id)
        detail = client.get(f"/api/v1/exports/{export_id}").json()
        response, body = download(client, detail)
        assert response.status_code == 200
        archives[who] = (detail, body)

    owner_detail, owner_body = archives["owner"]
    assert owner_detail["password_hashes"] is True
    assert all(identify_hasher(password) for password in _passwords(owner_body) if not password.startswith("!"))
    assert any(not password.startswith("!") for password in _passwords(owner_body))

    admin_detail, admin_body = archives["admin"]
    assert admin_detail["password_hashes"] is False
    assert set(_passwords(admin_body)) == {"!"}
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(admin_body)).read("manifest.json"))
    assert "accounts_user.password" in manifest["secrets_omitted"]
    assert archive_verify(io.BytesIO(admin_body))["rows"] == manifest["rows"]


@pytest.mark.parametrize("held_by", ["suspension", "scheduled deletion"])
def test_an_export_whose_task_was_refused_while_the_workspace_was_held_runs_once_it_is_back(
    acme, held_by, monkeypatch, django_capture_on_commit_callbacks
):
    """Its task, delivered while the workspace was suspended (or scheduled for deletion), was
    refused and acknowledged; resuming (or cancelling the deletion) queues it again, as it does
    the workspace's queued runs — not an export left `queued` for ever."""
    from apps.lifecycle.deletion import tenant_deletion_cancel, tenant_deletion_schedule
    from apps.lifecycle.exports import export_start
    from apps.lifecycle.tasks import export_tenant, exports_resume
    from apps.runs.tasks import run_sweep_tenant
    from apps.tenants.services import tenant_resume, tenant_suspend
    from tests.conftest import tenant_user

    owner = tenant_user(acme, "owner@acme.test")
    queued, resumes = [], []
    monkeypatch.setattr(export_tenant, "apply_async", lambda *a, **k: queued.append(k.get("args") or a[0]))
    monkeypatch.setattr(exports_resume, "apply_async", lambda *a, **k: resumes.append(k.get("args") or a[0]))
    monkeypatch.setattr(run_sweep_tenant, "apply_async", lambda *a, **k: None)
    with schema_context(acme.schema_name), django_capture_on_commit_callbacks(execute=True):
        export = export_start(actor=owner)
    assert queued == [[acme.schema_name, str(export.pk)]]
    queued.clear()

    if held_by == "suspension":
        tenant_suspend(tenant=acme, actor="operator")
    else:
        tenant_deletion_schedule(tenant=acme, actor="operator")
    refused = export_tenant.apply(args=[acme.schema_name, str(export.pk)])  # what a worker does now
    assert type(refused.result).__name__ == "TenantUnavailable"

    with django_capture_on_commit_callbacks(execute=True):
        if held_by == "suspension":
            tenant_resume(tenant=acme, actor="operator")
        else:
            tenant_deletion_cancel(tenant=acme, actor="operator")
    assert resumes == [[acme.schema_name]]
    assert exports_resume.apply(args=resumes[0]).result == 1  # as a worker receives it
    assert queued == [[acme.schema_name, str(export.pk)]]
    assert run_here(acme, export.pk).status == Export.Status.SUCCEEDED


def test_resuming_a_workspace_queues_its_own_exports_again_never_another_workspaces(
    acme, globex, monkeypatch, django_capture_on_commit_callbacks
):
    """Isolation: globex's queued export stays where it is when acme is resumed, and acme's
    resume task, run in acme, hands no worker globex's export."""
    from apps.lifecycle.exports import export_start
    from apps.lifecycle.tasks import export_tenant, exports_resume
    from apps.runs.tasks import run_sweep_tenant
    from apps.tenants.services import tenant_resume, tenant_suspend
    from tests.conftest import tenant_user

    queued, resumes = [], []
    monkeypatch.setattr(export_tenant, "apply_async", lambda *a, **k: queued.append(k.get("args") or a[0]))
    monkeypatch.setattr(exports_resume, "apply_async", lambda *a, **k: resumes.append(k.get("args") or a[0]))
    monkeypatch.setattr(run_sweep_tenant, "apply_async", lambda *a, **k: None)
    exports = {}
    for tenant in (acme, globex):
        with schema_context(tenant.schema_name), django_capture_on_commit_callbacks(execute=True):
            exports[tenant.slug] = export_start(actor=tenant_user(tenant, f"owner@{tenant.slug}.test"))
    queued.clear()

    tenant_suspend(tenant=acme, actor="operator")
    with django_capture_on_commit_callbacks(execute=True):
        tenant_resume(tenant=acme, actor="operator")
    assert resumes == [[acme.schema_name]]
    assert exports_resume.apply(args=resumes[0]).result == 1
    assert queued == [[acme.schema_name, str(exports["acme"].pk)]]
    with schema_context(globex.schema_name):
        assert Export.objects.get(pk=exports["globex"].pk).status == Export.Status.QUEUED


def test_an_export_whose_every_worker_is_lost_is_given_up_after_three(acme):
    """A task delivered again after its worker died starts the export over, each delivery counted;
    once three workers took it up and were lost (its archive too large for a worker's memory,
    say), the next delivery fails it `export_lost` instead of handing it on for ever."""
    from apps.lifecycle.exports import MAX_ATTEMPTS

    client = api(acme, issue(acme))
    export_id = start(client).json()["id"]
    with schema_context(acme.schema_name):
        Export.objects.filter(pk=export_id).update(status=Export.Status.RUNNING, attempts=MAX_ATTEMPTS - 1)
    assert run_here(acme, export_id).attempts == MAX_ATTEMPTS  # the last worker it may have: it runs
    with schema_context(acme.schema_name):
        Export.objects.filter(pk=export_id).update(status=Export.Status.RUNNING, attempts=MAX_ATTEMPTS)
        assert export_run(export_id=export_id) == Export.Status.FAILED
        export = Export.objects.get(pk=export_id)
    assert (export.status, export.error.split(":")[0], export.attempts) == ("failed", "export_lost", MAX_ATTEMPTS)
    body = client.get(f"/api/v1/exports/{export_id}").json()
    assert body["status"] == "failed" and "3 times" in str(body)

"""An export whose worker died, its task's redelivery refused because the workspace was suspended
meanwhile, is given back to a worker when the workspace is resumed (docs/export-jobs.md)."""

from django_tenants.utils import schema_context

from apps.lifecycle.models import Export


def test_an_export_whose_worker_died_while_the_workspace_was_suspended_is_queued_again_on_resume(
    acme, monkeypatch, django_capture_on_commit_callbacks
):
    """docs/export-jobs.md: "A task whose worker died is delivered again and the export starts
    over". When that redelivery arrives while the workspace is suspended, TenantTask refuses and
    acknowledges it (foundry/celery.py), so it never comes again. Resuming the workspace is meant
    to give back the work its suspension held back (tenants.services.tenant_work_resume,
    lifecycle.exports_resume): a running export no worker holds is queued again, or it would
    stay `running` for ever (rows_done frozen, the console polling every second)."""
    from apps.lifecycle.exports import export_start
    from apps.lifecycle.tasks import export_tenant, exports_resume
    from apps.runs.tasks import run_sweep_tenant
    from apps.tenants.services import tenant_resume, tenant_suspend
    from tests.conftest import tenant_user

    queued, resumes = [], []
    monkeypatch.setattr(export_tenant, "apply_async", lambda *a, **k: queued.append(k.get("args") or a[0]))
    monkeypatch.setattr(exports_resume, "apply_async", lambda *a, **k: resumes.append(k.get("args") or a[0]))
    monkeypatch.setattr(run_sweep_tenant, "apply_async", lambda *a, **k: None)
    with schema_context(acme.schema_name), django_capture_on_commit_callbacks(execute=True):
        export = export_start(actor=tenant_user(acme, "owner@acme.test"))
        # A worker took it up (attempt 1) and died mid-archive: running, its lock expired.
        Export.objects.filter(pk=export.pk).update(status=Export.Status.RUNNING, attempts=1, rows_done=10)
    queued.clear()

    tenant_suspend(tenant=acme, actor="operator")
    refused = export_tenant.apply(args=[acme.schema_name, str(export.pk)])  # the broker's redelivery
    assert type(refused.result).__name__ == "TenantUnavailable"

    with django_capture_on_commit_callbacks(execute=True):
        tenant_resume(tenant=acme, actor="operator")
    assert resumes == [[acme.schema_name]]
    exports_resume.apply(args=resumes[0])
    assert queued == [[acme.schema_name, str(export.pk)]], "the lost running export was never queued again"

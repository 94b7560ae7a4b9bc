"""Grow a workspace's collections quickly (bulk rows, as services would leave them) and count
SQL per request (tests/console/test_data_growth.py)."""

import uuid

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.catalog.models import Deployment, Document, Version
from apps.runs.models import Approval, Run, Step
from apps.tenants.models import Tenant
from apps.tokens.models import ApiToken


def queries_of(client, url: str, **extra) -> tuple[int, object]:
    """(SQL statements run while answering GET url, the response)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **extra)
    connection.set_schema_to_public()
    return len(captured.captured_queries), response


def sql_of(client, url: str, **extra) -> tuple[list[str], object]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **extra)
    connection.set_schema_to_public()
    return [q["sql"] for q in captured.captured_queries], response


def runs_add(tenant: Tenant, agent: Document, n: int, **fields) -> list[Run]:
    with schema_context(tenant.schema_name):
        live = Deployment.objects.select_related("version").get(pk=agent.live_id)
        runs = [
            Run(
                agent=agent,
                deployment=live,
                version=live.version,
                domain_version_id=live.domain_version_id,
                project="tests",
                provider="scripted",
                model="scripted-1",
                input=f"input {i}",
                created_by="owner@acme.test",
                status=Run.Status.SUCCEEDED,
                **fields,
            )
            for i in range(n)
        ]
        return Run.objects.bulk_create(runs)


def steps_add(tenant: Tenant, run: Run, n: int, start: int = 1) -> None:
    with schema_context(tenant.schema_name):
        Step.objects.bulk_create(
            Step(
                run=run,
                index=start + i,
                node="tool",
                tool="find_invoices",
                arguments={"q": i},
                status="ok",
                summary=f"step {i}",
                record={"warnings": []},
                replay={},
            )
            for i in range(n)
        )
        Run.objects.filter(pk=run.pk).update(step_count=start + n - 1)


def approvals_add(tenant: Tenant, run: Run, n: int) -> None:
    with schema_context(tenant.schema_name):
        Approval.objects.bulk_create(
            Approval(run=run, step=i + 1, tool="find_invoices", tool_call_id=f"c{i}", decision="approved")
            for i in range(n)
        )


def members_add(tenant: Tenant, n: int) -> None:
    with schema_context(tenant.schema_name):
        User.objects.bulk_create(User(email=f"m{uuid.uuid4().hex[:12]}@acme.test", role="viewer") for _ in range(n))


def tokens_add(tenant: Tenant, n: int) -> None:
    with schema_context(tenant.schema_name):
        ApiToken.objects.bulk_create(
            ApiToken(name=f"t{i}", prefix=uuid.uuid4().hex[:12], secret_hash="x" * 64, role="viewer", scopes=["read"])
            for i in range(n)
        )


def versions_add(tenant: Tenant, document: Document, n: int) -> None:
    """`n` more versions of `document`, each a copy of its latest (rows only, no git history)."""
    with schema_context(tenant.schema_name):
        document.refresh_from_db()
        latest = document.versions.get(number=document.latest_number)
        Version.objects.bulk_create(
            Version(
                document=document,
                number=latest.number + 1 + i,
                digest=f"{i:064x}",
                source=latest.source,
                content=latest.content,
                message=f"copy {i}",
                author_name=latest.author_name,
                author_email=latest.author_email,
                domain_version_id=latest.domain_version_id,
            )
            for i in range(n)
        )
        Document.objects.filter(pk=document.pk).update(latest_number=latest.number + n)
        document.refresh_from_db()


def tenants_add(n: int) -> None:
    """`n` tenant rows in public (no schema: for the operator pages, which read public only)."""
    with schema_context("public"):
        Tenant.objects.bulk_create(
            Tenant(schema_name=f"t_{u}", slug=f"s{u}", name=f"Scale {u}")
            for u in (uuid.uuid4().hex[:12] for _ in range(n))
        )

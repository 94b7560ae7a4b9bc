from pathlib import Path

import pytest
from django_tenants.utils import schema_context

from apps.catalog.services import version_publish
from tests.conftest import tenant_user

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(path: str) -> str:
    return (EXAMPLES / path).read_text()


def publish(tenant, source: str, *, email: str | None = None, message: str = "test"):
    """Publish `source` in `tenant` as `email` (default: its owner); returns the Published result."""
    user = tenant_user(tenant, email or f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        return version_publish(actor=user, source=source, message=message)


@pytest.fixture
def finance(acme):
    """acme with the example finance domain (v1) and invoice-triage agent (v1) published."""
    publish(acme, example("domains/finance.yaml"))
    return publish(acme, example("agents/invoice-triage.yaml")).version


def finance_versions(tenant, count: int) -> None:
    """The finance domain published, then revised to `count` versions (stored directly: fast)."""
    from apps.catalog.models import Version

    published = publish(tenant, example("domains/finance.yaml"))
    with schema_context(tenant.schema_name):
        first = Version.objects.get(pk=published.version.pk)
        Version.objects.bulk_create(
            Version(
                document_id=first.document_id,
                number=n,
                digest=f"{n:064x}",
                source=first.source + f"\n# revision {n}\n",
                content=first.content,
                message=f"revision {n}",
                author_name=first.author_name,
                author_email=first.author_email,
            )
            for n in range(2, count + 1)
        )

"""Provisioning from several processes at once (two operators, or the console and the CLI)."""

import threading
import uuid

from django.core.exceptions import ValidationError
from django.db import connection, connections
from django_tenants.utils import schema_exists

from apps.tenants.models import Tenant
from apps.tenants.services import tenant_provision


def _race(django_db_blocker, slugs: list[str]) -> list[object]:
    barrier = threading.Barrier(len(slugs))
    outcomes: list[object] = [None] * len(slugs)

    def provision(i: int, slug: str) -> None:
        try:
            barrier.wait()
            outcomes[i] = tenant_provision(slug=slug, name=slug, owner_email=f"o@{slug}.test").tenant.slug
        except ValidationError as e:
            outcomes[i] = e.error_dict["slug"][0].code
        finally:
            connections.close_all()

    with django_db_blocker.unblock():
        threads = [threading.Thread(target=provision, args=(i, s)) for i, s in enumerate(slugs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    return outcomes


def test_different_tenants_provisioned_at_once_all_succeed(django_db_blocker):
    slugs = [f"c{uuid.uuid4().hex[:8]}" for _ in range(3)]
    assert _race(django_db_blocker, slugs) == slugs
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        assert Tenant.objects.filter(slug__in=slugs).count() == 3
        assert all(schema_exists(s) for s in slugs)


def test_the_same_slug_provisioned_at_once_succeeds_once_and_is_refused_once(django_db_blocker):
    slug = f"c{uuid.uuid4().hex[:8]}"
    outcomes = _race(django_db_blocker, [slug, slug])
    assert sorted(outcomes) == sorted([slug, "slug_taken"])
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        assert Tenant.objects.filter(slug=slug).count() == 1

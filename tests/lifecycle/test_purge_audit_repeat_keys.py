"""docs/lifecycle.md, "Deleting a workspace": no key in any Redis database names the purged
workspace's schema. A refused token (wrong secret) leaves `foundry:audit-repeat:<schema>:…`
(`audit_first_in_window`): kept, a new workspace taking the slug (same schema, token ids from 1
again) would have the same refusal of its own token left out of its audit trail for a while."""

import redis
from django.conf import settings

from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from tests.api.conftest import api, issue


def _keys_naming(schema: str) -> list[str]:
    base = settings.CACHES["default"]["LOCATION"].rsplit("/", 1)[0]
    found = []
    for db in range(16):
        with redis.Redis.from_url(f"{base}/{db}") as client:
            for key in client.scan_iter(match=f"*:{schema}:*", count=1000):
                found.append(f"{db}:{key.decode(errors='replace')}")
    return found


def test_a_purge_deletes_the_audit_repeat_keys_of_the_workspace(fresh_tenant, db):
    tenant = fresh_tenant
    token = issue(tenant)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert api(tenant, wrong).get("/api/v1/workspace").status_code == 401
    assert any(":audit-repeat:" in key for key in _keys_naming(tenant.schema_name))

    tenant_purge(tenant=tenant_deletion_schedule(tenant=tenant, actor="operator:1", grace_days=0), actor="operator:1")

    assert [key for key in _keys_naming(tenant.schema_name) if ":audit-repeat:" in key] == []

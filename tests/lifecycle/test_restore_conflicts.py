"""A workspace's backup restored after it was lost (docs/operations/disaster-recovery.md)."""

import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.lifecycle.backup import backup_list, tenant_scope
from apps.tenants.models import Domain, Tenant
from apps.tenants.services import tenant_provision
from tests.conftest import PASSWORD
from tests.lifecycle.test_backup import workspace_lose


def test_restoring_a_workspace_whose_custom_domain_was_taken_meanwhile_is_a_clear_refusal(
    django_db_setup, django_db_blocker, tmp_path
):
    custom = f"ai-{uuid.uuid4().hex[:8]}.custom.test"
    with django_db_blocker.unblock():
        slug = f"k{uuid.uuid4().hex[:10]}"
        lost = tenant_provision(slug=slug, name="Lost", owner_email=f"o@{slug}.test", owner_password=PASSWORD).tenant
        Domain.objects.create(domain=custom, tenant=lost, is_primary=False)
        call_command("backup", tenant=slug, dir=tmp_path, stdout=io.StringIO())
        (made,) = backup_list(tmp_path, tenant_scope(lost))
        workspace_lose(lost)
        other = Tenant.objects.get(slug="globex")
        Domain.objects.create(domain=custom, tenant=other, is_primary=False)
        try:
            with pytest.raises(CommandError) as refused:
                call_command("restore", str(made), stdout=io.StringIO())
            assert str(made) in str(refused.value)
        finally:
            Domain.objects.filter(domain=custom).delete()
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{lost.schema_name}" CASCADE')

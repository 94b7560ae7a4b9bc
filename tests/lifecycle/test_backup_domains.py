"""A workspace backup (tar) edited to claim a host the platform keeps for itself is refused
(backup.py `_domain_rows_check`; found by a review: a backup's checksums are no signature, and
its restore loaded every `tenants_domain` row as written)."""

import io
import json
import tarfile

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from apps.lifecycle.backup import backup_list, tenant_scope
from apps.tenants.models import Domain
from tests.lifecycle.test_backup import unblocked, workspace_create, workspace_lose  # noqa: F401
from tests.lifecycle.test_backup_tampered import repack


def test_a_workspace_backup_edited_to_claim_a_platform_host_is_not_restored_with_it(unblocked, tmp_path):  # noqa: F811
    """An import leaves behind every custom domain under the platform's base domain (`www.<base>`,
    `login.<base>`, the `<slug>.<base>` of a workspace not yet created: docs/export.md,
    `_domain_attachable`); a restore refuses a backup edited to give the workspace one, and
    restores nothing. It loaded every `tenants_domain` row as written."""
    mine = workspace_create()
    call_command("backup", tenant=mine.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(mine))
    with tarfile.open(made) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    (entry,) = [t for t in manifest["tables"] if t["table"] == "tenants_domain"]
    host = f"www.{django_settings.FOUNDRY_BASE_DOMAIN}"

    def add_domain(members):
        row = {"id": "987654321", "domain": host, "tenant_id": str(mine.pk), "is_primary": "f"}
        line = "\t".join(row.get(c, "\\N") for c in entry["columns"]) + "\n"
        return entry["member"], members[entry["member"]] + line.encode()

    def more_rows(manifest):
        for item in manifest["tables"]:
            if item["table"] == "tenants_domain":
                item["rows"] += 1

    crafted = repack(made, tmp_path / "crafted.tar", member_edit=add_domain, manifest_edit=more_rows)
    workspace_lose(mine)
    with pytest.raises(CommandError, match="not the workspace's to have"):
        call_command("restore", str(crafted), stdout=io.StringIO())
    assert not Domain.objects.filter(domain=host).exists(), f"the restored workspace took the platform's host {host}"

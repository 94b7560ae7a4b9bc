"""Upgrading a running installation (docs/operations/deployment.md "Each release": migrate_platform
runs once, before the new web, worker and beat processes start, so the previous release still
serves while and after it runs; docs/export.md: an archive of an older schema imports, "Columns
the archive lacks (an older schema) take their defaults"). A column added to a released table
NOT NULL carries a database default, or the previous release's inserts and its archives fail."""

import io
import uuid

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddField
from django.db.models import NOT_PROVIDED
from django_tenants.utils import schema_context

from apps.lifecycle.archive import tenant_import
from apps.tokens.models import ApiToken
from apps.tokens.services import token_issue
from tests.conftest import tenant_user
from tests.lifecycle.test_archive import archive_of
from tests.lifecycle.test_archive_older_runs_schema import as_older

TOKENS = "schema/tokens_apitoken.ndjson"
NEW_TOKEN_COLUMNS = ("revoked_reason", "issued_by_id", "issued_by_token_id")


def as_before_issuer_columns(data: bytes) -> bytes:
    """The archive as the platform made it before tokens 0002 (e3a52c0 and earlier):
    `tokens_apitoken` rows without revoked_reason / issued_by_id / issued_by_token_id, and only
    tokens.0001 in the tenant's schema version."""
    return as_older(data, TOKENS, NEW_TOKEN_COLUMNS, "tokens", ("0002_", "0003_", "0004_", "0005_"))


def test_an_archive_made_before_the_token_issuer_columns_imports_its_tokens(acme):
    """docs/export.md: an archive imports "at the same or a newer schema", and columns it lacks
    take their defaults: an archive made before tokens 0002 (no `revoked_reason`) imports its
    tokens (the column had no database default: every such archive with an API token was refused,
    archive_rows_invalid)."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        prefix = token_issue(actor=owner, name="ci", role="viewer", scopes=["read"]).token.prefix
    data, _ = archive_of(acme)
    tenant = tenant_import(io.BytesIO(as_before_issuer_columns(data)), slug=f"r{uuid.uuid4().hex[:10]}")
    with schema_context(tenant.schema_name):
        imported = ApiToken.objects.get(prefix=prefix)
    assert imported.revoked_reason == ""


# What the previous release's Django writes (its model's columns), in a table migrated by HEAD.
OLD_RELEASE_INSERTS = {
    "tokens_apitoken.revoked_reason": (
        "INSERT INTO tokens_apitoken (name, prefix, secret_hash, role, scopes, created_by, created_at)"
        " VALUES ('old', 'abcdef012345', repeat('0', 64), 'viewer', '{read}', 'cli:create_api_token', now())"
    ),
    "lifecycle_export.password_hashes/attempts": (
        "INSERT INTO lifecycle_export (id, status, rows_total, rows_done, file, size, sha256, error, created_by,"
        " created_at) VALUES (gen_random_uuid(), 'queued', 0, 0, '', 0, '', '', 'owner@acme.test', now())"
    ),
}


@pytest.mark.parametrize("insert", OLD_RELEASE_INSERTS.values(), ids=OLD_RELEASE_INSERTS.keys())
def test_the_previous_release_can_still_write_rows_after_migrate_platform(acme, insert):
    """deployment.md runs migrate_platform before the new processes start: the old ones serve on
    meanwhile, and their inserts name only the columns they know. Between the migration and the
    restart, the previous release's token issue and workspace export still work (they failed with
    an IntegrityError, a 500, on `revoked_reason`, `password_hashes` and `attempts`)."""
    with schema_context(acme.schema_name), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(insert)


def test_columns_added_to_a_released_table_carry_a_database_default(db):
    """Every NOT NULL column a migration adds to an existing table (any but an app's initial
    migration) has a database default, so the release before, serving on while migrate_platform
    runs, and its archives, which name no such column, write its default."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    missing = []
    for (app_label, name), migration in sorted(loader.disk_migrations.items()):
        if not migration.__module__.startswith("apps.") or getattr(migration, "initial", False):
            continue
        for operation in migration.operations:
            if not isinstance(operation, AddField) or operation.field.null or operation.field.many_to_many:
                continue
            field = apps.get_model(app_label, operation.model_name)._meta.get_field(operation.name)
            if field.db_default is NOT_PROVIDED and not field.null:
                missing.append(f"{app_label}.{name}: {operation.model_name}.{operation.name}")
    assert not missing, missing

"""A first SSO sign-in of an address and adding a member of that address take turns on a lock
(apps/identity/login.py, apps/accounts/services.py): within their workspace only. The lock's name
held no workspace, so a sign-in or an invitation in one workspace waited for another workspace's
of the same address (from the noisy-neighbour review)."""

import psycopg
from django.db import connection, transaction
from django_tenants.utils import schema_context

from apps.accounts.permissions import Role
from apps.accounts.services import SSO_EMAIL_LOCK, member_add
from tests.conftest import tenant_user

ADDRESS = "shared.person@example.com"


def _held_elsewhere(schema: str) -> psycopg.Connection:
    """Another session holding `schema`'s lock on ADDRESS (a sign-in there, under way)."""
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], dbname=settings["NAME"],
        user=settings["USER"], password=settings["PASSWORD"],
    )  # fmt: skip
    other.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [SSO_EMAIL_LOCK.format(schema=schema, email=ADDRESS)])
    return other


def test_one_workspaces_sign_in_of_an_address_never_holds_up_anothers(acme, globex):
    other = _held_elsewhere("acme")
    try:
        with schema_context("globex"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")  # waiting on acme's lock: an error
            owner = tenant_user(globex, "owner@globex.test")
            added = member_add(actor=owner, email=ADDRESS, role=Role.VIEWER)
            assert added.email == ADDRESS
            transaction.set_rollback(True)
    finally:
        other.close()

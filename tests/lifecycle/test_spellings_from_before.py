"""Addresses stored before they had one spelling (accounts 0003: U-labels for A-labels). The
migration re-spelled members' rows; copies made before it keep pat@xn--bcher-kva.test (the
trail's actor table, the model history, catalog authors), and so do archives made before it.
Before: an erasure looked for one spelling only, so it left the old one behind, and could not
find a member removed before the upgrade at all (`person_unknown`); an archive's member with such
an address, imported, could not sign in, nor (made before identity 0004) its break-glass owner.
Now an erasure looks for both spellings, and an import rewrites the rows of an archive made
before those migrations as they did (found by the upgrades review)."""

import importlib
import io
import uuid

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_remove
from apps.audit.services import audit_record
from apps.catalog.services import version_publish
from apps.lifecycle.archive import tenant_import
from apps.lifecycle.erasure import member_erase
from tests.conftest import PASSWORD, tenant_user
from tests.lifecycle.test_archive import archive_of
from tests.lifecycle.test_archive_older_runs_schema import as_older
from tests.lifecycle.test_erasure import traces_of
from tests.runs.conftest import FINANCE

A_LABEL = "pat@xn--bcher-kva.test"  # as the platform stored it before accounts 0003
U_LABEL = "pat@bücher.test"  # the spelling email_clean keeps since


def _spelling_migration_run() -> None:
    """accounts 0003's forwards, as `migrate` ran it on the upgrade."""
    module = importlib.import_module("apps.accounts.migrations.0003_email_domain_spelling")
    module.forwards(django_apps, None)


def _pat_before_upgrade(tenant) -> User:
    """Pat as the release before accounts 0003 left them: member row, audit actor, model history
    and catalog authorship all in the A-label spelling (email_clean kept it as typed)."""
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        pat = User.objects.create_user(A_LABEL, PASSWORD, role=Role.ADMIN, full_name="Patricia Quinlan")
        audit_record(action="member.added", actor=owner, target=pat, data={"role": pat.role})
        version_publish(actor=pat, source=FINANCE, message="first")  # author_email, AuditActor
    return pat


def test_erasure_of_a_current_member_leaves_the_old_spelling_of_their_address(fresh_tenant, db):
    """Every stored spelling of the person's address goes: Pat's catalog versions and model
    history hold pat@xn--bcher-kva.test."""
    tenant = fresh_tenant
    _pat_before_upgrade(tenant)
    with schema_context(tenant.schema_name):
        _spelling_migration_run()
        assert User.objects.filter(email=U_LABEL).exists()
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        member_erase(actor=owner, email=U_LABEL)
    connection.set_schema_to_public()
    left = traces_of(tenant, "xn--bcher-kva.test", "bücher.test")
    assert left == {}, f"the erased person's address is still stored in {left}"


@pytest.mark.parametrize("typed", [A_LABEL, U_LABEL])
def test_a_former_member_removed_before_the_upgrade_is_erased_by_either_spelling(fresh_tenant, db, typed):
    """Known only by the audit actor table and the model history, both in the A-label spelling."""
    tenant = fresh_tenant
    pat = _pat_before_upgrade(tenant)
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        member_remove(actor=owner, member=pat)
        _spelling_migration_run()
        try:
            erased = member_erase(actor=owner, email=typed)
        except ValidationError as refused:
            pytest.fail(f"erasure refused: {refused.code} {refused.messages}")
    assert erased.actor_id == f"user:{pat.pk}"
    connection.set_schema_to_public()
    left = traces_of(tenant, "xn--bcher-kva.test", "bücher.test")
    assert left == {}, f"the erased person's address is still stored in {left}"


def test_a_member_of_an_archive_made_before_the_spelling_migration_signs_in_to_the_copy(acme):
    """Pat, with a password, in an archive exported by the release before accounts 0003: signs
    in to the copy typing the address either way, as on the upgraded source."""
    with schema_context(acme.schema_name):
        User.objects.create_user(A_LABEL, PASSWORD, role=Role.ADMIN)  # as the release before stored it
    data, _ = archive_of(acme)
    # The archive as that release wrote it: accounts 0003 (and what followed) not in its schema.
    older = as_older(data, "schema/accounts_user.ndjson", (), "accounts", ("0003_", "0004_"))
    slug = f"r{uuid.uuid4().hex[:10]}"
    tenant = tenant_import(io.BytesIO(older), slug=slug)
    with schema_context(tenant.schema_name):
        assert User.objects.filter(email="pat@bücher.test").exists()  # re-spelled as accounts 0003 does
    answers = {}
    for typed in (A_LABEL, "pat@bücher.test"):
        response = Client(HTTP_HOST=f"{slug}.localhost").post("/login/", {"username": typed, "password": PASSWORD})
        answers[typed] = response.status_code
    assert set(answers.values()) == {302}, f"sign-in answers (302 = signed in): {answers}"


def test_the_break_glass_owner_of_an_archive_made_before_identity_0004_signs_in_to_the_copy(acme):
    """Exported between accounts 0003 and identity 0004: the owner's address in U-labels, the
    break-glass address as typed (A-labels). With SSO required, the break-glass owner signs in."""
    from tests.identity.sso_rows import sso_stored

    with schema_context(acme.schema_name):
        User.objects.create_user("boss@bücher.test", PASSWORD, role=Role.OWNER)
    sso_stored(acme, "https://idp.example.test", sso_required=True, break_glass_email="boss@xn--bcher-kva.test")
    data, _ = archive_of(acme)
    older = as_older(data, "schema/identity_ssoconfiguration.ndjson", (), "identity", ("0004_",))
    slug = f"r{uuid.uuid4().hex[:10]}"
    tenant = tenant_import(io.BytesIO(older), slug=slug)
    answers = {}
    for typed in ("boss@bücher.test", "boss@xn--bcher-kva.test"):
        response = Client(HTTP_HOST=f"{slug}.localhost").post("/login/", {"username": typed, "password": PASSWORD})
        answers[typed] = response.status_code
    with schema_context(tenant.schema_name):
        assert User.objects.filter(email="boss@bücher.test", role=Role.OWNER).exists()
    assert set(answers.values()) == {302}, f"sign-in answers (302 = signed in): {answers}"

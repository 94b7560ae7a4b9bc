"""A sign-in shares the lock a change of the sign-in rules holds (member_signing_in); saving SSO
settings asks the identity provider for its discovery document (up to DISCOVERY_TIMEOUT_SECONDS)
before it takes that lock, so no sign-in waits for the provider's answer."""

import threading
import time

import pytest
from django.db import connections
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.identity import services as identity_services
from tests.conftest import PASSWORD, host_of
from tests.providers.conftest import encryption_key  # noqa: F401

pytestmark = pytest.mark.usefixtures("encryption_key")

ISSUER = "https://idp.example.test"


def _discovered(issuer: str) -> dict:
    return {
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "userinfo_endpoint": "",
        "end_session_endpoint": "",
        "signing_algs": ["RS256"],
        "iss_parameter_supported": False,
    }


def test_a_password_sign_in_does_not_wait_for_an_sso_save_talking_to_the_identity_provider(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """An owner saves SSO settings whose provider answers slowly; a password sign-in meanwhile is
    answered at once, not after the provider (an outage of it is when the break-glass owner signs in)."""
    tenant = fresh_tenant
    entered, release = threading.Event(), threading.Event()

    def slow_discovery(issuer):
        entered.set()
        release.wait(8)  # the identity provider, slow to answer
        return _discovered(issuer)

    monkeypatch.setattr(identity_services, "sso_discover", slow_discovery)
    errors = []

    def owner_saves():
        try:
            with schema_context(tenant.schema_name):
                owner = User.objects.get(email=f"owner@{tenant.slug}.test")
                identity_services.sso_configure(actor=owner, issuer=ISSUER, client_id="foundry", client_secret="s3cret")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    with django_db_blocker.unblock():
        saver = threading.Thread(target=owner_saves)
        saver.start()
        assert entered.wait(10), "the save never reached discovery"
        timer = threading.Timer(5.0, release.set)
        timer.start()
        try:
            client = Client(HTTP_HOST=host_of(tenant))
            started = time.monotonic()
            response = client.post("/login/", {"username": f"viewer@{tenant.slug}.test", "password": PASSWORD})
            took = time.monotonic() - started
        finally:
            release.set()
            timer.cancel()
            saver.join(30)
    assert not errors, errors
    assert response.status_code == 302
    assert took < 2.0

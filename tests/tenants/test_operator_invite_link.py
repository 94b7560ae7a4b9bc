"""The operator console's invitation link for a new workspace's owner uses the address the
operator's browser reached (the Host header), never the port the server listens on behind a
TLS proxy."""

from django.test import Client, override_settings
from django_tenants.utils import schema_context

from apps.accounts.models import User


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_the_operator_consoles_invitation_link_uses_the_public_https_origin(db, django_capture_on_commit_callbacks):
    # As gunicorn (bound to 0.0.0.0:8000) hands a request the proxy forwarded for
    # https://localhost/: Host without a port, SERVER_PORT the listening port.
    client = Client(HTTP_HOST="localhost", SERVER_PORT="8000", HTTP_X_FORWARDED_PROTO="https")
    with schema_context("public"):
        client.force_login(User.objects.get(email="operator@platform.test"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/tenants/new/",
            {"slug": "initech", "name": "Initech", "plan": "team", "owner_email": "bill@initech.test"},
            SERVER_PORT="8000",
        )
    assert response.status_code == 200
    assert response.context["invite_url"].startswith("https://initech.localhost/invite/"), response.context[
        "invite_url"
    ]

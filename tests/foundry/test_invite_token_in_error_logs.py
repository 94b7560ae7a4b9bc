"""An invitation link's token is a credential (whoever holds it sets the member's password):
every log line shows it as `…` (docs/observability.md "Logs") — also the lines Django writes
itself with the raw path in their message (`django.request` when a view raises: "Internal
Server Error: %s"; `django.security.csrf` when the CSRF check refuses a POST), which
foundry/logs.py's LogContextFilter redacts in the message and its arguments."""

import json

from django.db import OperationalError
from django.test import Client

from apps.accounts.services import invitation_tokens
from tests.conftest import client_for
from tests.foundry.test_logs import json_log_lines


def _invite_path(acme) -> str:
    response = client_for(acme, "admin@acme.test").post(
        "/members/add/", {"email": "invitee@acme.test", "full_name": "Invitee", "role": "viewer"}
    )
    assert response.status_code == 200
    return response.context["invite_url"].removeprefix("http://acme.localhost")


def test_a_500_on_an_invitation_link_does_not_log_its_token(acme, monkeypatch):
    path = _invite_path(acme)
    token = path.rstrip("/").rsplit("/", 1)[1]
    assert len(token) > 10

    def database_away(*_args, **_kwargs):
        raise OperationalError("the database is briefly unavailable")

    monkeypatch.setattr(invitation_tokens, "check_token", database_away)
    client = Client(HTTP_HOST="acme.localhost", raise_request_exception=False)
    with json_log_lines() as lines:
        response = client.get(path)
    assert response.status_code == 500
    assert [line for line in lines if line["logger"] == "django.request"], "the 500 is logged"
    leaked = [line for line in lines if token in json.dumps(line)]
    assert not leaked, f"the invitation token reached the logs: {leaked}"


def test_a_csrf_refusal_on_an_invitation_link_does_not_log_its_token(acme):
    path = _invite_path(acme)
    token = path.rstrip("/").rsplit("/", 1)[1]
    client = Client(HTTP_HOST="acme.localhost", enforce_csrf_checks=True)
    with json_log_lines() as lines:
        response = client.post(path, {"new_password1": "x", "new_password2": "x"})
    assert response.status_code == 403
    leaked = [line for line in lines if token in json.dumps(line)]
    assert not leaked, f"the invitation token reached the logs: {leaked}"

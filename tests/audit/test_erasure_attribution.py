"""An erasure appends `member.erased` and `audit.actor.erased`, both naming who asked (the API's
token, the command) and carrying the request (docs/audit.md)."""

import json

from django.test import Client

from tests.api.conftest import api, issue
from tests.conftest import PASSWORD, audit_events


def test_an_erasure_over_the_api_names_the_caller_on_every_event_it_appends(acme):
    # The viewer signs in once: the actor table now holds their email.
    signed_in = Client(HTTP_HOST="acme.localhost").post(
        "/login/", {"username": "viewer@acme.test", "password": PASSWORD}
    )
    assert signed_in.status_code == 302
    plaintext = issue(acme, role="owner")
    caller = f"token:{plaintext[3:15]}"
    before = len(audit_events("acme"))

    response = api(acme, plaintext).post(
        "/api/v1/members/erase", json.dumps({"email": "viewer@acme.test"}), content_type="application/json"
    )
    assert response.status_code == 200, response.content

    new = audit_events("acme")[before:]
    assert {e.action for e in new} >= {"member.erased", "audit.actor.erased"}, [e.action for e in new]
    for event in new:
        assert (event.actor_id, event.request_id, event.ip) == (caller, response["X-Request-ID"], "127.0.0.1"), (
            event.action,
            event.actor_id,
            event.request_id,
            event.ip,
        )

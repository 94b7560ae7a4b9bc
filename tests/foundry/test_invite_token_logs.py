"""An invitation link's token never reaches a log line, however the path reaching Django spells it
(doubled slashes from a proxy or a base URL, another case): docs/observability.md, "Logs"."""

import json

from django.test import Client

from tests.conftest import client_for
from tests.foundry.test_logs import json_log_lines


def _invite_path(acme) -> str:
    response = client_for(acme, "admin@acme.test").post(
        "/members/add/", {"email": "invitee@acme.test", "full_name": "Invitee", "role": "viewer"}
    )
    assert response.status_code == 200
    return response.context["invite_url"].removeprefix("http://acme.localhost")


def test_a_doubled_leading_slash_on_an_invitation_link_does_not_log_its_token(acme):
    """A link reaching Django as `//invite/<uid>/<token>/` (a proxy or a base URL joined with an
    extra slash — common) is a 404, and the 404 is logged. docs/observability.md: "an invitation
    link's token is replaced by `…`" in every line. The message is redacted (the unanchored
    regex of LogContextFilter), but the record's `request` field — written into the JSON line —
    goes through `path_for_logs`, whose regex is anchored at `^/invite/`, so the live token is
    written out whole. The same anchored regex serves gunicorn's access line."""
    path = _invite_path(acme)
    token = path.rstrip("/").rsplit("/", 1)[1]
    assert len(token) > 10
    client = Client(HTTP_HOST="acme.localhost")
    with json_log_lines() as lines:
        # PATH_INFO given directly: the test client would read `//invite` as a network location.
        response = client.get("/", PATH_INFO="/" + path)
    assert response.status_code == 404
    assert [line for line in lines if line["logger"] == "django.request"], "the 404 is logged"
    leaked = [line for line in lines if token in json.dumps(line)]
    assert not leaked, f"the invitation token reached the logs: {leaked}"


def test_every_spelling_of_an_invitation_path_is_redacted():
    from foundry.logs import path_for_logs

    for path in ("/invite/Ng/tok-123/", "//invite/Ng/tok-123/", "/invite//Ng/tok-123/", "/INVITE/Ng/tok-123/"):
        assert "tok-123" not in path_for_logs(path), path
    assert path_for_logs("/runs/123/") == "/runs/123/"

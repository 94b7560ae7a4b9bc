"""The git smart-HTTP endpoint: a fault of the server is not the client's malformed request."""

from django.db import OperationalError
from django.test import Client

from tests.api.conftest import issue
from tests.catalog.conftest import example, publish


def _pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def test_a_database_fault_while_building_the_history_is_not_called_a_malformed_request(acme, monkeypatch):
    """A database that drops the connection or times out while a well-formed fetch's history is
    read is the server's fault: a 5xx, as in info_refs, not 400 `invalid_git_request` ("could not
    be understood"), which blamed the client and hid the fault from monitoring."""
    publish(acme, example("domains/finance.yaml"))
    token = issue(acme, role="viewer", scopes=("read",))
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    advertised = client.get("/git/foundry.git/info/refs?service=git-upload-pack")
    head = advertised.content.split(b"\n")[1][8:48]
    body = _pkt(b"want " + head + b" side-band-64k thin-pack ofs-delta\n") + b"0000" + _pkt(b"done\n")
    kind = "application/x-git-upload-pack-request"
    control = client.post("/git/foundry.git/git-upload-pack", body, content_type=kind)
    assert control.status_code == 200 and b"PACK" in control.content, (head, control.content)  # well formed

    def history_fails():
        raise OperationalError("canceling statement due to statement timeout")

    monkeypatch.setattr("apps.catalog.git_http.history_build", history_fails)
    client.raise_request_exception = False  # the answer the client gets, not the exception
    response = client.post("/git/foundry.git/git-upload-pack", body, content_type=kind)
    assert response.status_code >= 500, (response.status_code, response.content)

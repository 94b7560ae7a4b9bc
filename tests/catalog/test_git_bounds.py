"""The git smart-HTTP endpoint bounds what one fetch may ask for (docs/manifests.md): wants as haves."""

import gzip

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.catalog import git_http
from apps.catalog.history import history_build
from tests.api.conftest import issue
from tests.catalog.conftest import example, publish

KIND = "application/x-git-upload-pack-request"


def _pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def _client(acme) -> Client:
    token = issue(acme, role="viewer", scopes=("read",))
    return Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")


def _fetch(client: Client, body: bytes):
    return client.post(
        "/git/foundry.git/git-upload-pack", gzip.compress(body), content_type=KIND, HTTP_CONTENT_ENCODING="gzip"
    )


@pytest.mark.parametrize("end", [b"0000", b"0001"], ids=["flush", "delim"])
def test_a_want_repeated_tens_of_thousands_of_times_is_negotiated_once(acme, monkeypatch, end):
    """dulwich's negotiation walks every want line again for each `have`: the same want
    repeated 75,000 times (12 KB gzipped, under the 4 MiB limit) beside 4,096 haves held a web
    worker ~11 s for one rate-limit unit. Each wanted commit is now handed to it once: the fetch
    is served, and dulwich reads one want line — also when the wants end in a delim-pkt (`0001`),
    which dulwich reads as a flush (it slipped past the de-duplication: 75,001 wants, 9 s)."""
    publish(acme, example("domains/finance.yaml"))
    publish(acme, example("agents/invoice-triage.yaml"))
    with schema_context(acme.schema_name):
        repo = history_build()
    first, head = repo.refs[b"refs/tags/dis/finance/v1"], repo.refs[b"refs/heads/main"]
    body = (
        _pkt(b"want " + first + b" multi_ack_detailed side-band-64k thin-pack ofs-delta\n")
        + _pkt(b"want " + first + b"\n") * 75_000
        + end
        + _pkt(b"have " + head + b"\n") * 4096
        + _pkt(b"done\n")
    )
    handed = []
    handler = git_http._handler

    def counting(proto, *, advertise):
        read = proto.read_pkt_line

        def read_counted():
            line = read()
            if line is not None and line.startswith(b"want "):
                handed.append(line)
            return line

        proto.read_pkt_line = read_counted
        return handler(proto, advertise=advertise)

    monkeypatch.setattr(git_http, "_handler", counting)
    response = _fetch(_client(acme), body)
    assert response.status_code == 200, response.content[:200]
    assert len(handed) == 1


def test_more_wanted_commits_than_the_repository_has_refs_are_refused(acme):
    publish(acme, example("domains/finance.yaml"))
    wants = b"".join(_pkt(b"want " + b"%040x" % n + b"\n") for n in range(1, 50))
    response = _fetch(_client(acme), wants + b"0000" + _pkt(b"done\n"))
    assert response.status_code == 413
    assert b"too_many_wants" in response.content

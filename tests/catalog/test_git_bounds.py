"""The git smart-HTTP endpoint bounds what one fetch may ask for (docs/manifests.md): wants as haves."""

import gzip

from django.test import Client
from django_tenants.utils import schema_context

from apps.catalog.history import history_build
from tests.api.conftest import issue
from tests.catalog.conftest import example, publish

KIND = "application/x-git-upload-pack-request"


def _pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def test_a_fetch_repeating_one_want_tens_of_thousands_of_times_is_refused_before_negotiating(acme):
    """dulwich's multi_ack negotiation walks the wants again for every `have`, time ~ wants x haves.
    Only the haves were capped: the same want line repeated 75,000 times (12 KB gzipped, under the
    4 MiB limit) beside 4,096 haves held a web worker ~11 s for one rate-limit unit. More than
    4,096 wants: 413 `too_many_wants`, before the negotiation."""
    publish(acme, example("domains/finance.yaml"))
    publish(acme, example("agents/invoice-triage.yaml"))
    with schema_context(acme.schema_name):
        repo = history_build()
    first, head = repo.refs[b"refs/tags/dis/finance/v1"], repo.refs[b"refs/heads/main"]
    body = (
        _pkt(b"want " + first + b" multi_ack side-band-64k thin-pack ofs-delta\n")
        + _pkt(b"want " + first + b"\n") * 75_000
        + b"0000"
        + _pkt(b"have " + head + b"\n") * 4096
        + _pkt(b"done\n")
    )
    token = issue(acme, role="viewer", scopes=("read",))
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        "/git/foundry.git/git-upload-pack", gzip.compress(body), content_type=KIND, HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 413, response.status_code
    assert b"too_many_wants" in response.content

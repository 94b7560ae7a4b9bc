"""A fresh `git clone` of a catalog with more than 4,096 versions is served. git asks for every ref
it is offered (one `want` line per ref: each version's tag, plus the branch; checked with
GIT_TRACE_PACKET on git 2.39), and every version has its own tag on its own commit
(apps/catalog/history.py): a fixed cap on want lines refused such a clone (413 too_many_wants);
the bound is now the repository's refs, each wanted commit negotiated once."""

from django.test import Client

from tests.api.conftest import issue
from tests.catalog.conftest import finance_versions

KIND = "application/x-git-upload-pack-request"


def _pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def _advertised(body: bytes) -> list[bytes]:
    """The object ids of the refs an info/refs answer advertises."""
    ids, at = [], 0
    while at < len(body):
        size = int(body[at : at + 4], 16)
        if size == 0:
            at += 4
            continue
        line = body[at + 4 : at + size]
        at += size
        if not line.startswith(b"#"):
            ids.append(line[:40])
    return ids


def test_a_fresh_clone_of_a_catalog_with_5000_versions_is_served(acme):
    finance_versions(acme, 5000)
    token = issue(acme, role="viewer", scopes=("read",))
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    refs = client.get("/git/foundry.git/info/refs", {"service": "git-upload-pack"})
    assert refs.status_code == 200
    wants = _advertised(refs.content)
    assert len(wants) > 5000  # every tag and the branch, as git clone asks for them
    body = (
        _pkt(b"want " + wants[0] + b" multi_ack_detailed side-band-64k thin-pack ofs-delta agent=git/2.39.5\n")
        + b"".join(_pkt(b"want " + oid + b"\n") for oid in wants)
        + b"0000"
        + _pkt(b"done\n")
    )
    response = client.post("/git/foundry.git/git-upload-pack", body, content_type=KIND)
    assert response.status_code == 200, (response.status_code, response.content[:200])

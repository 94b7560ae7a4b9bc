"""Upload-pack requests an ordinary git client makes, whose negotiation cost grew with wants x
history in dulwich, and a `filter` line the server does not advertise (found by a review; see
apps/catalog/git_http.py `_all_wants_satisfied`, `_find_shallow`, `_UploadPack.filter_spec`)."""

import time

from django.test import Client
from django_tenants.utils import schema_context

from apps.catalog.history import history_build
from tests.api.conftest import issue
from tests.catalog.conftest import example, finance_versions, publish
from tests.catalog.test_git_clone_many_versions import _advertised

KIND = "application/x-git-upload-pack-request"
URL = "/git/foundry.git/git-upload-pack"
CAPS = b" multi_ack_detailed side-band-64k thin-pack ofs-delta shallow"


def _pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def _client(acme) -> Client:
    token = issue(acme, role="viewer", scopes=("read",))
    return Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")


def _every_ref_wanted(client: Client) -> bytes:
    """The want section git sends for a clone / `git fetch --tags`: every advertised ref once."""
    wants = _advertised(client.get("/git/foundry.git/info/refs", {"service": "git-upload-pack"}).content)
    return _pkt(b"want " + wants[0] + CAPS + b"\n") + b"".join(_pkt(b"want " + w + b"\n") for w in wants[1:])


def _timed(client: Client, body: bytes):
    started = time.monotonic()
    response = client.post(URL, body, content_type=KIND)
    return response, time.monotonic() - started


def test_wanting_every_tag_while_having_the_first_commit_does_not_hold_a_worker(acme):
    """With multi_ack_detailed, a flush after the haves makes the server check every want against
    the haves: one walk for all of them now. dulwich walked from each want on its own, so wanting
    every tag and having the root commit (the first round of `git fetch --tags` from a clone made
    at v1) took ~11 s at 1,000 versions and >300 s at 5,000, for one rate-limit unit and a viewer
    token. It takes about what a clone does."""
    finance_versions(acme, 1000)
    client = _client(acme)
    with schema_context(acme.schema_name):
        root = history_build().refs[b"refs/tags/dis/finance/v1"]
    wants = _every_ref_wanted(client)
    clone, clone_time = _timed(client, wants + b"0000" + _pkt(b"done\n"))
    assert clone.status_code == 200
    response, took = _timed(client, wants + b"0000" + _pkt(b"have " + root + b"\n") + b"0000")
    assert response.status_code < 500
    assert took < 3 + 2 * clone_time, f"held the worker {took:.1f} s (a full clone: {clone_time:.1f} s)"


def test_deepening_every_tag_to_full_depth_does_not_hold_a_worker(acme):
    """`deepen 2147483647` (what `git fetch --unshallow` sends) with every tag wanted costs about
    what a clone does: each commit is walked once, at its least depth. dulwich's find_shallow kept
    a state per (commit, depth), and each want reaches a commit at another depth: 2,000 versions
    took ~4.2 s against ~1 s for the full clone, in memory too."""
    finance_versions(acme, 3000)
    client = _client(acme)
    wants = _every_ref_wanted(client)
    clone, clone_time = _timed(client, wants + b"0000" + _pkt(b"done\n"))
    assert clone.status_code == 200
    deep, took = _timed(client, wants + _pkt(b"deepen 2147483647\n") + b"0000" + _pkt(b"done\n"))
    assert deep.status_code < 500
    assert took < 1 + 2 * clone_time, f"deepen held the worker {took:.1f} s (a full clone: {clone_time:.1f} s)"


def test_a_filter_line_is_not_honoured_when_filter_is_not_advertised(acme):
    """git_http._UploadPack leaves `filter` out of the capabilities (a partial clone of this
    stateless server cannot fetch the missing objects later; docs/manifests.md: "a partial clone
    gets everything"). A `filter blob:none` line sent all the same is ignored: the pack is whole.
    dulwich applied it, leaving the blob out ("filtered 1 objects")."""
    publish(acme, example("domains/finance.yaml"))
    with schema_context(acme.schema_name):
        head = history_build().refs[b"refs/heads/main"]
    want = _pkt(b"want " + head + b" multi_ack_detailed side-band-64k thin-pack ofs-delta\n")
    client = _client(acme)
    full = client.post(URL, want + b"0000" + _pkt(b"done\n"), content_type=KIND)
    filtered = client.post(URL, want + _pkt(b"filter blob:none\n") + b"0000" + _pkt(b"done\n"), content_type=KIND)
    assert full.status_code == 200 and b"counting objects: 4" in full.content
    assert filtered.status_code >= 400 or b"counting objects: 4" in filtered.content, filtered.content[:80]

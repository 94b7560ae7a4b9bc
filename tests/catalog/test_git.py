"""The git history: derived deterministically, cloned read-only over HTTP with a token."""

import base64
import gzip
import subprocess
import time
import uuid

import httpx
import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.catalog.history import history_build
from apps.catalog.services import version_publish
from apps.tenants.services import tenant_provision
from apps.tokens.services import token_issue
from tests.api.conftest import issue
from tests.catalog.conftest import example, finance_versions, publish
from tests.conftest import client_for, tenant_user


def test_one_commit_per_version_with_its_author_message_and_tags(acme, finance):
    changed = example("domains/finance.yaml").replace("    AP:", "    PO: Purchase order.\n    AP:")
    publish(acme, changed, message="Add PO to the glossary", email="developer@acme.test")
    with schema_context(acme.schema_name):
        repo = history_build()
        again = history_build()
    head = repo.refs[b"refs/heads/main"]
    assert head == again.refs[b"refs/heads/main"]  # same history, same commit ids
    assert repo.refs.read_ref(b"HEAD") == b"ref: refs/heads/main"
    tags = sorted(ref for ref in repo.refs.as_dict() if ref.startswith(b"refs/tags/"))
    assert tags == [b"refs/tags/agent/invoice-triage/v1", b"refs/tags/dis/finance/v1", b"refs/tags/dis/finance/v2"]
    commit = repo[head]
    assert commit.author == b"developer@acme.test <developer@acme.test>"
    assert commit.message.startswith(b"Add PO to the glossary\n\ndomain finance v2\n")
    assert repo[repo.refs[b"refs/tags/dis/finance/v2"]].id == head
    assert len(list(repo.get_walker(include=[head]))) == 3
    _mode, blob = repo[commit.tree].lookup_path(repo.__getitem__, b"domains/finance.yaml")
    assert repo[blob].data == changed.encode()
    _mode, blob = repo[commit.tree].lookup_path(repo.__getitem__, b"agents/invoice-triage.yaml")
    assert repo[blob].data == example("agents/invoice-triage.yaml").encode()


def _git(acme, path: str, token: str | None = None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client_for(acme).get(f"/git/foundry.git/{path}", **headers, **extra)


def test_the_git_endpoint_needs_a_token_of_this_tenant_that_may_read(acme, globex, finance):
    anonymous = _git(acme, "info/refs?service=git-upload-pack")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Basic")
    assert _git(acme, "info/refs?service=git-upload-pack", issue(globex)).status_code == 401
    assert _git(acme, "info/refs?service=git-upload-pack", issue(acme, scopes=("run",))).status_code == 403
    viewer = issue(acme, role="viewer", scopes=("read",))
    response = _git(acme, "info/refs?service=git-upload-pack", viewer)
    assert response.status_code == 200
    assert response.content.startswith(b"001e# service=git-upload-pack\n0000")
    basic = base64.b64encode(f"anyone:{viewer}".encode()).decode()
    assert _git(acme, "info/refs?service=git-upload-pack", HTTP_AUTHORIZATION=f"Basic {basic}").status_code == 200
    refused = _git(acme, "info/refs?service=git-receive-pack", viewer)
    assert (refused.status_code, refused.content[:10]) == (403, b"read_only:")


def test_malformed_git_requests_are_4xx(acme, finance):
    token = issue(acme)
    client = client_for(acme)
    url = "/git/foundry.git/git-upload-pack"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.post(url, b"garbage", content_type="application/x-git-upload-pack-request", **auth).status_code == 400
    assert client.post(url, b"0000", content_type="text/plain", **auth).status_code == 415
    gzipped = client.post(
        url, b"nope", content_type="application/x-git-upload-pack-request", HTTP_CONTENT_ENCODING="gzip", **auth
    )
    assert gzipped.status_code == 400
    assert client.post("/git/foundry.git/git-receive-pack", b"", content_type="x", **auth).status_code == 403


@pytest.fixture
def published_tenant(fresh_tenant, django_db_blocker):
    """A committed tenant with the example domain and agent published, and a read token."""
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        owner = tenant_user(fresh_tenant, f"owner@{fresh_tenant.slug}.test")
        version_publish(actor=owner, source=example("domains/finance.yaml"), message="Finance domain")
        version_publish(actor=owner, source=example("agents/invoice-triage.yaml"), message="Triage agent")
        token = token_issue(actor="test", name="git", role="viewer", scopes=["read"]).plaintext
    return fresh_tenant, token


def _clone(url: str, port: int, host: str, dest, *extra: str):
    resolve = f"http.curloptResolve={host}:{port}:127.0.0.1"
    return subprocess.run(
        ["git", "-c", resolve, "clone", "--quiet", *extra, url, str(dest)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin", "HOME": str(dest.parent)},
    )


def test_git_clone_over_http_with_a_token(published_tenant, live_port, tmp_path, fresh_tenant):
    tenant, token = published_tenant
    host = f"{tenant.slug}.localhost"
    url = f"http://git:{token}@{host}:{live_port}/git/foundry.git"
    result = _clone(url, live_port, host, tmp_path / "history")
    assert result.returncode == 0, result.stderr
    log = subprocess.run(
        ["git", "-C", str(tmp_path / "history"), "log", "--format=%an|%s"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert log == [f"owner@{tenant.slug}.test|Triage agent", f"owner@{tenant.slug}.test|Finance domain"]
    tags = subprocess.run(["git", "-C", str(tmp_path / "history"), "tag"], capture_output=True, text=True).stdout
    assert tags.split() == ["agent/invoice-triage/v1", "dis/finance/v1"]
    assert (tmp_path / "history" / "domains" / "finance.yaml").read_text() == example("domains/finance.yaml")

    # no token, a wrong token, and pushing are all refused
    anonymous = _clone(f"http://{host}:{live_port}/git/foundry.git", live_port, host, tmp_path / "anon")
    assert anonymous.returncode != 0
    assert "Authentication failed" in anonymous.stderr or "could not read Username" in anonymous.stderr
    wrong = _clone(url.replace(token, token[:-4] + "AAAA"), live_port, host, tmp_path / "wrong")
    assert wrong.returncode != 0
    push = subprocess.run(
        [
            "git",
            "-c",
            f"http.curloptResolve={host}:{live_port}:127.0.0.1",
            "-C",
            str(tmp_path / "history"),
            "push",
            "origin",
            "HEAD:refs/heads/evil",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"},
    )
    assert push.returncode != 0


def test_git_clone_of_another_tenant_with_my_token_fails(published_tenant, live_port, tmp_path, django_db_blocker):
    tenant, _token = published_tenant
    slug = f"g{uuid.uuid4().hex[:10]}"
    with django_db_blocker.unblock():
        other = tenant_provision(slug=slug, name=f"Other {slug}", owner_email=f"owner@{slug}.test").tenant
        with schema_context(other.schema_name):
            other_token = token_issue(actor="test", name="git", role="owner", scopes=["read"]).plaintext
    host = f"{tenant.slug}.localhost"
    result = _clone(f"http://git:{other_token}@{host}:{live_port}/git/foundry.git", live_port, host, tmp_path / "x")
    assert result.returncode != 0
    assert not (tmp_path / "x" / "domains").exists()
    # and the other tenant's own repository is empty of this tenant's history
    other_host = f"{slug}.localhost"
    own = _clone(
        f"http://git:{other_token}@{other_host}:{live_port}/git/foundry.git", live_port, other_host, tmp_path / "own"
    )
    assert own.returncode == 0, own.stderr
    assert not (tmp_path / "own" / "domains").exists()


def test_a_gzip_body_with_a_corrupt_deflate_stream_is_a_400_not_a_500(acme):
    publish(acme, example("domains/finance.yaml"))
    token = issue(acme, role="viewer", scopes=("read",))
    client = Client(HTTP_HOST="acme.localhost")
    good = gzip.compress(b"0000")
    corrupt = good[:10] + b"\xff" * 6 + good[-8:]  # a valid gzip header, then an invalid deflate block
    response = client.post(
        "/git/foundry.git/git-upload-pack",
        corrupt,
        content_type="application/x-git-upload-pack-request",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 400, response.status_code
    assert response.content.startswith(b"invalid_body:")


def test_git_fetches_spend_the_token_rate_like_the_api(acme):
    """Each git request (which rebuilds the whole history) spends the token's and the workspace's
    rates as an API request does: 429 with Retry-After once the burst is spent."""
    from django.core.management import call_command

    from apps.tenants.limits import limits_cache_clear

    publish(acme, example("domains/finance.yaml"))
    limits_cache_clear()
    call_command("tenant_limits", "acme", "--requests-per-second", "1", "--burst", "20")  # a token's burst: 10
    try:
        git = Client(
            HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {issue(acme, name='git', scopes=('read',))}"
        )
        statuses = [git.get("/git/foundry.git/info/refs?service=git-upload-pack").status_code for _ in range(12)]
        # Control: the API refuses a token once its burst is spent.
        api = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {issue(acme, name='api')}")
        api_statuses = [api.get("/api/v1/domains").status_code for _ in range(12)]
    finally:
        limits_cache_clear()
    assert 429 in api_statuses, api_statuses
    assert statuses[:10] == [200] * 10 and 429 in statuses, statuses


def test_an_upload_pack_request_sent_chunked_is_served(published_tenant, live_port):
    """git sends an upload-pack request larger than http.postBuffer (1 MiB: the want lines of a
    workspace with many versions) chunked, without a Content-Length: served like the same bytes
    with one, under gunicorn."""
    tenant, token = published_tenant
    base = f"http://127.0.0.1:{live_port}/git/foundry.git"
    headers = {"Host": f"{tenant.slug}.localhost:{live_port}", "Authorization": f"Bearer {token}"}
    advertised = httpx.get(f"{base}/info/refs?service=git-upload-pack", headers=headers)
    assert advertised.status_code == 200
    head = advertised.content.split(b"\n")[1][8:48].decode()  # after "0000" and the pkt length
    want = f"want {head} side-band-64k thin-pack ofs-delta\n".encode()
    body = b"%04x" % (len(want) + 4) + want + b"0000" + b"0009done\n"
    headers["Content-Type"] = "application/x-git-upload-pack-request"

    sized = httpx.post(f"{base}/git-upload-pack", headers=headers, content=body)
    assert sized.status_code == 200 and b"PACK" in sized.content  # the request is well formed

    chunked = httpx.post(f"{base}/git-upload-pack", headers=headers, content=iter([body]))
    assert chunked.request.headers.get("transfer-encoding") == "chunked"
    assert chunked.status_code == 200, chunked.text
    assert b"PACK" in chunked.content


@pytest.mark.parametrize("option", ["--filter=blob:none", "--filter=tree:0"])
def test_a_partial_clone_gets_the_whole_history_checked_out(published_tenant, live_port, tmp_path, option):
    """The server does not offer `filter` (it could not serve the objects a partial clone leaves
    out): git says it ignores the filter, asks for it all the same, and clones in full."""
    tenant, token = published_tenant
    host = f"{tenant.slug}.localhost"
    url = f"http://git:{token}@{host}:{live_port}/git/foundry.git"
    result = _clone(url, live_port, host, tmp_path / "partial", option)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "partial" / "domains" / "finance.yaml").read_text() == example("domains/finance.yaml")


def test_an_upload_pack_request_past_the_limit_with_a_length_is_the_plain_413_git_prints(acme):
    from apps.catalog.git_http import MAX_REQUEST

    token = issue(acme, role="viewer", scopes=("read",))
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    body = b"0" * (MAX_REQUEST + 10)
    response = client.post(
        "/git/foundry.git/git-upload-pack", body, content_type="application/x-git-upload-pack-request"
    )
    assert (response.status_code, response["Content-Type"].split(";")[0]) == (413, "text/plain")
    assert response.content.startswith(b"body_too_large:")


def _pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def test_a_fetch_offering_thousands_of_haves_is_refused_at_once(acme):
    """dulwich's negotiation walks the wants again for every `have` (time ~ haves²): one
    have repeated 40,000 times, 6 KB gzipped, held a web worker for 25 s and counted as one request.
    More than MAX_HAVES haves is a 413 `too_many_haves`, answered before any walking; a fetch
    offering its tip is served. Found by a review."""

    from apps.catalog.git_http import MAX_HAVES

    publish(acme, example("domains/finance.yaml"))
    publish(acme, example("agents/invoice-triage.yaml"))
    with schema_context(acme.schema_name):
        repo = history_build()
    first, head = repo.refs[b"refs/tags/dis/finance/v1"], repo.refs[b"refs/heads/main"]

    def fetch(haves: int):
        body = (
            _pkt(b"want " + first + b" multi_ack_detailed side-band-64k thin-pack ofs-delta\n")
            + b"0000"
            + _pkt(b"have " + head + b"\n") * haves
            + _pkt(b"done\n")
        )
        token = issue(acme, role="viewer", scopes=("read",))
        return Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}").post(
            "/git/foundry.git/git-upload-pack",
            gzip.compress(body),
            content_type="application/x-git-upload-pack-request",
            HTTP_CONTENT_ENCODING="gzip",
        )

    started = time.monotonic()
    refused = fetch(40_000)
    assert time.monotonic() - started < 2
    assert refused.status_code == 413 and refused.content.startswith(b"too_many_haves: More than"), refused.content
    assert fetch(MAX_HAVES).status_code == 200


def test_haves_within_the_limit_do_not_hold_a_worker_and_plain_multi_ack_is_refused(acme):
    """With plain `multi_ack` dulwich walked each want back through the history at every have of
    a commit it knows, until all wants were satisfied — never, when one is an ancestor of the have:
    a 15-version catalog, a viewer token and 4,096 haves (~1 KB gzipped) held a worker ~7 s, 200
    versions minutes. It is not advertised, and refused; git's own multi_ack_detailed is cheap."""
    from apps.catalog.git_http import MAX_HAVES

    finance_versions(acme, 15)
    with schema_context(acme.schema_name):
        refs = history_build().get_refs()
    have = refs[b"refs/tags/dis/finance/v2"]
    root = refs[b"refs/tags/dis/finance/v1"]  # an ancestor of the have: never "satisfied"
    # dulwich walks set(wants) and stops at the first unsatisfied one; order the request so that
    # v1 comes last in that set (same process, same hashes), as an attacker tries until it does.
    wants = [*sorted(set(refs.values()) - {root}), root]
    while list(set(wants))[-1] != root:
        order = list(set(wants))
        wants = [w for w in wants if w in order[: order.index(root) + 1]]
    token = issue(acme, role="viewer", scopes=("read",))
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    for capability, status in ((b"multi_ack", 400), (b"multi_ack_detailed", 200)):
        body = (
            _pkt(b"want " + wants[0] + b" " + capability + b" side-band-64k thin-pack ofs-delta\n")
            + b"".join(_pkt(b"want " + oid + b"\n") for oid in wants[1:])
            + b"0000"
            + _pkt(b"have " + have + b"\n") * MAX_HAVES
            + _pkt(b"done\n")
        )
        started = time.monotonic()
        response = client.post(
            "/git/foundry.git/git-upload-pack",
            gzip.compress(body),
            content_type="application/x-git-upload-pack-request",
            HTTP_CONTENT_ENCODING="gzip",
        )
        assert time.monotonic() - started < 3, capability
        assert response.status_code == status, (capability, response.content[:200])

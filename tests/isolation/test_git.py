"""The git endpoint asked, with this workspace's own token, for objects of another workspace's
history (by commit id): nothing of the other history is served."""

from django.test import Client
from django_tenants.utils import schema_context

from apps.catalog.history import history_build
from tests.api.conftest import issue
from tests.catalog.conftest import publish
from tests.runs.conftest import FINANCE

GLEDGER = FINANCE.replace("  name: finance", "  name: gledger").replace(
    "description: Accounts payable", "description: GLOBEX-GIT-SECRET Accounts payable"
)


def pkt(line: bytes) -> bytes:
    return f"{len(line) + 4:04x}".encode() + line


def test_upload_pack_on_acme_wanting_a_globex_commit_serves_nothing_of_globex(acme, globex):
    publish(acme, FINANCE)
    publish(globex, GLEDGER)
    with schema_context(globex.schema_name):
        repo = history_build()
        globex_head = repo.refs[b"HEAD"]
    body = pkt(b"want " + globex_head + b" side-band-64k ofs-delta thin-pack\n") + b"0000" + pkt(b"done\n")
    token = issue(acme, role="owner", scopes=("read",))
    response = Client(HTTP_HOST="acme.localhost").post(
        "/git/foundry.git/git-upload-pack",
        body,
        content_type="application/x-git-upload-pack-request",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code in (200, 400), response.status_code
    assert b"PACK" not in response.content, response.content[:200]
    assert b"GLOBEX-GIT-SECRET" not in response.content
    # The control: the same request for acme's own head is served a pack.
    with schema_context(acme.schema_name):
        acme_head = history_build().refs[b"HEAD"]
    own = Client(HTTP_HOST="acme.localhost").post(
        "/git/foundry.git/git-upload-pack",
        pkt(b"want " + acme_head + b" side-band-64k ofs-delta thin-pack\n") + b"0000" + pkt(b"done\n"),
        content_type="application/x-git-upload-pack-request",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert own.status_code == 200 and b"PACK" in own.content
    # globex's token on acme's host: refused before any git.
    foreign = Client(HTTP_HOST="acme.localhost").post(
        "/git/foundry.git/git-upload-pack",
        body,
        content_type="application/x-git-upload-pack-request",
        HTTP_AUTHORIZATION=f"Bearer {issue(globex, role='owner', scopes=('read',))}",
    )
    assert foreign.status_code == 401


def test_receive_pack_refuses_any_token_on_any_host(acme, globex):
    for host, tenant in (("acme.localhost", globex), ("globex.localhost", acme), ("acme.localhost", acme)):
        response = Client(HTTP_HOST=host).post(
            "/git/foundry.git/git-receive-pack",
            b"0000",
            content_type="application/x-git-receive-pack-request",
            HTTP_AUTHORIZATION=f"Bearer {issue(tenant, role='owner')}",
        )
        assert response.status_code in (401, 403)


def test_protected_resource_metadata_names_only_the_hosts_own_workspace(acme, globex):
    from tests.identity.sso_rows import sso_stored

    for tenant in (acme, globex):
        sso_stored(tenant, f"https://idp.example.test/realms/{tenant.slug}", client_id=f"foundry-{tenant.slug}")
    body = Client(HTTP_HOST="acme.localhost").get("/.well-known/oauth-protected-resource/mcp").json()
    assert "globex" not in str(body)
    assert body["resource"] == "http://acme.localhost/mcp"
    assert body["authorization_servers"] == ["https://idp.example.test/realms/acme"]

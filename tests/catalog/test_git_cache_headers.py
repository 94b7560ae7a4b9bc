"""The git endpoint's answers are never stored by a cache. They had git's own headers,
`no-cache, max-age=0, must-revalidate` without `no-store` or `private`: RFC 9111 §3.5 lets a shared
cache store an answer to a request with credentials when it says `must-revalidate`, so a proxy
could keep a workspace's refs (its agents' and domains' names, commit ids) on disk — over plain
HTTP, as the README's own `git clone http://git:$TOKEN@…` reads them."""

import base64

from tests.api.conftest import api, issue

GIT_REFS = "/git/foundry.git/info/refs?service=git-upload-pack"


def _directives(response) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in response.get("Cache-Control", "").split(",") if part.strip()}


def test_the_ref_advertisement_is_not_storable_by_any_cache(acme):
    token = issue(acme, role="developer", scopes=("read",))
    basic = base64.b64encode(f"git:{token}".encode()).decode()
    response = api(acme).get(GIT_REFS, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200, response.content[:200]
    assert {"no-store", "private"} <= _directives(response), response.get("Cache-Control")


def test_another_workspaces_token_reads_no_refs_and_nothing_is_stored(acme, globex):
    token = issue(globex, role="developer", scopes=("read",))
    basic = base64.b64encode(f"git:{token}".encode()).decode()
    response = api(acme).get(GIT_REFS, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 401
    assert "no-store" in _directives(response), response.get("Cache-Control")

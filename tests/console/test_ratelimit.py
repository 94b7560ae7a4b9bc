"""Console form posts spend the workspace's request rate (apps/console/middleware.py)."""

import pytest
from django.core.management import call_command

from apps.tenants.limits import limits_cache_clear
from tests.conftest import client_for, free_port

MEMBERS = "/members/"
ADD = "/members/add/"  # refused as invalid (400) after it is counted: nothing is added


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    yield
    limits_cache_clear()


def limit(slug: str, *, burst: int) -> None:
    call_command("tenant_limits", slug, "--requests-per-second", "1", "--burst", str(burst))


def test_a_flood_of_form_posts_is_refused_with_a_429_page_and_the_headers(acme):
    limit("acme", burst=4)  # a member gets half: 2
    owner = client_for(acme, "owner@acme.test")
    first = owner.post(ADD, {"email": ""})
    assert first.status_code == 400
    assert first["RateLimit-Policy"] == '"default";q=1;w=2'  # a member's half of 1/s: 1 every 2 s
    assert owner.post(ADD, {"email": ""}).status_code == 400
    refused = owner.post(ADD, {"email": ""})
    assert refused.status_code == 429
    assert refused["Content-Type"].startswith("text/html")
    assert "Too many changes in a short time. Wait 2 seconds and try again." in refused.content.decode()
    assert refused["Retry-After"] == "2"
    assert refused["RateLimit"].startswith('"default";r=0;t=')
    assert owner.get(MEMBERS).status_code == 200  # reading is not counted


def test_posts_are_counted_per_member_and_per_workspace(acme, globex):
    limit("acme", burst=4)
    owner, admin, viewer = (client_for(acme, f"{role}@acme.test") for role in ("owner", "admin", "viewer"))
    assert [owner.post(ADD, {"email": ""}).status_code for _ in range(3)] == [400, 400, 429]
    assert [admin.post(ADD, {"email": ""}).status_code for _ in range(2)] == [400, 400]
    assert viewer.post(ADD, {"email": ""}).status_code == 429  # the workspace's burst of 4 is spent
    assert viewer.post("/logout/").status_code == 302  # signing out is never refused
    assert viewer.get(MEMBERS).status_code == 302  # signed out: to the sign-in page
    other = client_for(globex, "owner@globex.test")
    assert [other.post(ADD, {"email": ""}).status_code for _ in range(5)] == [400] * 5


def test_the_api_and_anonymous_posts_are_not_counted_twice(acme):
    from tests.api.conftest import api, issue

    limit("acme", burst=4)
    token = api(acme, issue(acme))
    assert [token.get("/api/v1/workspace").status_code for _ in range(2)] == [200, 200]  # counted once each
    assert client_for(acme).post("/login/", {"username": "x", "password": "y"}).status_code == 200
    owner = client_for(acme, "owner@acme.test")
    assert [owner.post(ADD, {"email": ""}).status_code for _ in range(3)] == [400, 400, 429]


def test_redis_unreachable_posts_are_refused_and_pages_still_show(acme, settings):
    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    owner = client_for(acme, "owner@acme.test")
    refused = owner.post(ADD, {"email": ""})
    assert (refused.status_code, refused["Retry-After"]) == (503, "1")
    assert b"rate_limiter_unavailable" in refused.content
    assert owner.get(MEMBERS).status_code == 200
    assert owner.post("/logout/").status_code == 302  # signing out still works
    assert owner.get(MEMBERS).status_code == 302

"""Per-tenant and per-credential request rates on the API (apps/tenants/limits.py).

Plans are scaled up in tests/settings.py, so each test sets an override (never scaled)."""

import time
from types import SimpleNamespace

import pytest
from django.core.management import call_command

from apps.tenants.limits import limiter, limits_cache_clear, refusals_forget, request_admit, request_refused_early
from foundry.ratelimit import limit_key
from tests.api.conftest import api, issue
from tests.conftest import free_port

WORKSPACE = "/api/v1/workspace"


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    yield
    limits_cache_clear()


def limit(slug: str, *, rps: int = 1, burst: int) -> None:
    call_command("tenant_limits", slug, "--requests-per-second", str(rps), "--burst", str(burst))


def bucket_pushed_out(key: str, seconds: float) -> None:
    """The bucket `seconds` out, as the version before this one wrote it (its TAT alone, no interval
    kept with it: what Redis holds after an upgrade): honoured as it stands, past the burst. The
    only way left to make a workspace's wait longer than its credential's (whose interval is twice
    as long): spent at the workspace's own rate, the rescaling of a changed rate caps it."""
    redis = limiter()._redis
    seconds_now, micros = redis.time()
    redis.set(key, f"{seconds_now * 1_000_000 + micros + seconds * 1_000_000:.3f}", px=int(seconds * 1000) + 1000)


def test_it_answers_with_the_ratelimit_headers(acme):
    limit("acme", burst=10)
    response = api(acme, issue(acme)).get(WORKSPACE)
    assert response.status_code == 200
    # A credential gets half of the tenant's rate (1/s: 1 every 2 s) and burst: 5, one spent.
    assert response["RateLimit-Policy"] == '"default";q=1;w=2'
    assert response["RateLimit"].startswith('"default";r=4;t=')
    assert "Retry-After" not in response


def test_it_refuses_after_the_burst_with_429_and_the_headers(acme):
    limit("acme", burst=4)
    client = api(acme, issue(acme))
    assert [client.get(WORKSPACE).status_code for _ in range(2)] == [200, 200]
    refused = client.get(WORKSPACE)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused["Retry-After"] == "2"  # the credential's half of 1/s: one every 2 s
    assert refused["RateLimit"].startswith('"default";r=0;t=')
    assert refused["RateLimit-Policy"] == '"default";q=1;w=2'


def test_one_credential_cannot_take_the_whole_tenant_rate(acme):
    limit("acme", burst=4)
    first, second, third = (api(acme, issue(acme, name=f"t{i}")) for i in range(3))
    assert [first.get(WORKSPACE).status_code for _ in range(3)] == [200, 200, 429]
    assert [second.get(WORKSPACE).status_code for _ in range(2)] == [200, 200]
    # The tenant's burst of 4 is spent: a third credential is refused too, and its own bucket
    # is not spent by that refusal (both are checked in one script, all or nothing).
    credentials = limiter()._redis.keys(limit_key("credential", f"{acme.pk}:*"))
    assert len(credentials) >= 2
    assert third.get(WORKSPACE).status_code == 429
    assert sorted(limiter()._redis.keys(limit_key("credential", f"{acme.pk}:*"))) == sorted(credentials)


def test_a_noisy_tenant_does_not_slow_another(acme, globex):
    limit("acme", burst=2)
    acme_client = api(acme, issue(acme))
    assert [acme_client.get(WORKSPACE).status_code for _ in range(3)] == [200, 429, 429]
    globex_client = api(globex, issue(globex))
    assert [globex_client.get(WORKSPACE).status_code for _ in range(5)] == [200] * 5


def test_a_signed_in_member_is_limited_as_a_credential(owner_client):
    limit("acme", burst=2)
    assert [owner_client.get(WORKSPACE).status_code for _ in range(2)] == [200, 429]


def test_unauthenticated_requests_spend_nothing(acme):
    limit("acme", burst=2)
    for _ in range(5):
        assert api(acme).get(WORKSPACE).status_code == 401
    assert api(acme, issue(acme)).get(WORKSPACE).status_code == 200


def test_redis_unreachable_reads_fall_back_and_writes_are_refused(acme, settings):
    limit("acme", burst=4)
    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    client = api(acme, issue(acme))
    started = time.monotonic()
    read = client.get(WORKSPACE)
    assert read.status_code == 200
    assert "RateLimit" in read
    write = client.post("/api/v1/tokens", {}, content_type="application/json")
    assert write.status_code == 503
    assert write.json()["error"]["code"] == "rate_limiter_unavailable"
    assert write["Retry-After"] == "1"
    # The local fallback still limits reads: the credential's burst is 2.
    assert [client.get(WORKSPACE).status_code for _ in range(2)] == [200, 429]
    assert time.monotonic() - started < 3  # one failed connect (0.25 s), then a cooldown: no hang


def test_redis_unreachable_writes_may_fall_back_when_configured(acme, settings):
    limit("acme", burst=4)
    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.FOUNDRY_RATELIMIT_ON_REDIS_ERROR_WRITES = "open_local"
    write = api(acme, issue(acme)).post("/api/v1/tokens", {}, content_type="application/json")
    assert write.status_code == 400  # admitted; the empty body is refused by the view


def test_a_standing_refusal_is_answered_before_the_token_is_looked_up_and_ends_on_time(acme, settings):
    """Once refused, a process answers that credential (and, refused on the tenant's bucket, the
    whole tenant) at once until the refusal's wait is over — without Redis, without the token
    lookup — and only then asks again."""
    limit("acme", rps=2, burst=2)  # a credential: 1 a second, burst 1
    refused_token, other_token = issue(acme, name="refused"), issue(acme, name="other")
    client = api(acme, refused_token)
    assert [client.get(WORKSPACE).status_code for _ in range(2)] == [200, 429]
    # Redis gone: a read would be admitted by the local fallback, so a 429 now is the memory's.
    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    early = client.get(WORKSPACE)
    assert early.status_code == 429 and early["Retry-After"] == "1"
    assert early.json()["error"]["code"] == "rate_limited"
    # A revoked or forged token of the same prefix gets the same answer; another credential does not.
    forged = api(acme, refused_token[:-4] + "xxxx").get(WORKSPACE)
    assert forged.status_code == 429
    assert api(acme, other_token).get(WORKSPACE).status_code == 200  # asked Redis (down): admitted locally
    settings.FOUNDRY_RATELIMIT_REDIS_URL = ""
    time.sleep(1.05)
    assert client.get(WORKSPACE).status_code == 200


def test_when_both_buckets_refuse_the_longer_wait_is_answered_and_both_are_remembered(acme):
    limit("acme", rps=1, burst=2)  # the workspace: 1/s, burst 2; a credential: 1/s, burst 1
    refusals_forget()
    member = SimpleNamespace(pk=424242)  # the credential `user:424242`
    assert request_admit(tenant_id=acme.pk, principal=member, write=False).allowed
    # The workspace's bucket pushed ~10 s out; the member's is spent for ~2 s.
    bucket_pushed_out(limit_key("tenant", str(acme.pk)), 10.0)
    try:
        refused = request_admit(tenant_id=acme.pk, principal=member, write=False)
        assert not refused.allowed and 8 < refused.retry_after <= 10
        early = request_refused_early(tenant_id=acme.pk, authorization=None)  # the workspace's, remembered
        assert early is not None and early.retry_after > 8
    finally:
        refusals_forget()


def test_a_refusal_answered_early_tells_the_longer_wait_of_both_buckets(acme):
    """When both buckets refuse, the headers are the longer wait's, also when the next request is
    answered from the process's memory of refusals (it named the token's 1 s, and a client
    honouring Retry-After met the workspace's refusal again)."""
    refusals_forget()
    limit("acme", rps=1, burst=2)  # the workspace: 1/s, burst 2; a credential: 1/s, burst 1
    client = api(acme, issue(acme))
    assert client.get(WORKSPACE).status_code == 200
    # The workspace's bucket pushed ~10 s out.
    bucket_pushed_out(limit_key("tenant", str(acme.pk)), 10.0)
    first = client.get(WORKSPACE)
    assert first.status_code == 429
    assert int(first["Retry-After"]) >= 9  # both refused: the longer wait
    again = client.get(WORKSPACE)  # answered from memory
    assert again.status_code == 429
    assert int(again["Retry-After"]) >= 8, again["Retry-After"]


def test_a_standing_refusal_is_answered_before_authentication_with_the_same_429(
    acme, django_assert_num_queries, monkeypatch
):
    """Once refused, the credential's next request is answered right after host routing
    (foundry/api/access.py ApiRefusalMiddleware): no token lookup, no session, no Redis — and
    the same 429 as the limiter's, counted under its route."""
    from foundry import metrics

    limit("acme", burst=2)
    client = api(acme, issue(acme))
    assert client.get(WORKSPACE).status_code == 200
    by_limiter = client.get(WORKSPACE)
    assert by_limiter.status_code == 429

    observed = []
    monkeypatch.setattr(metrics, "request_observe", lambda route, *rest: observed.append(route))
    monkeypatch.setattr(limiter(), "_redis", None)  # a Redis call now would fail loudly
    with django_assert_num_queries(0):
        standing = client.get(WORKSPACE)
    assert standing.status_code == 429
    assert (
        standing.json()
        == by_limiter.json()
        == {
            "error": {
                "code": "rate_limited",
                "message": "Too many requests; retry after the number of seconds in Retry-After.",
            }
        }
    )
    for header in ("RateLimit-Policy", "Content-Type"):
        assert standing[header] == by_limiter[header]
    assert standing["RateLimit"].startswith('"default";r=0;t=') and int(standing["Retry-After"]) >= 1
    assert observed == ["api/v1/workspace"]


def the_workspace_refused(tenant) -> None:
    """Spend the workspace's bucket (1/s, burst 2; a credential: burst 1) with three tokens: the
    third is refused by the workspace's bucket, which the process now remembers."""
    call_command("tenant_limits", tenant.slug, "--requests-per-second", "1", "--burst", "2")
    statuses = [api(tenant, issue(tenant, name=f"t{n}")).get(WORKSPACE).status_code for n in range(3)]
    assert statuses == [200, 200, 429]


def test_a_workspaces_standing_refusal_stays_in_that_workspace(acme, globex):
    """Checked fine: keys are by tenant id; another workspace is not refused from memory."""
    the_workspace_refused(acme)
    assert api(acme, issue(acme, name="fresh")).get(WORKSPACE).status_code == 429
    assert api(globex, issue(globex)).get(WORKSPACE).status_code == 200


def test_the_public_json_schemas_are_not_refused_by_the_workspaces_rate(acme):
    """/api/v1/schemas/<kind>.json is a plain Django view, public (no sign-in, cacheable for 5
    minutes), never counted against any rate: before this change the early refusal lived in
    TenantAPIView.initial and did not reach it. The middleware refuses every /api/v1/ path."""
    assert api(acme).get("/api/v1/schemas/domain.json").status_code == 200
    the_workspace_refused(acme)
    response = api(acme).get("/api/v1/schemas/domain.json")
    assert response.status_code == 200, (response.status_code, response.content)


@pytest.mark.parametrize(
    "authorization", ["Bearer fdy_", "Bearer \u00e9\u00e9\u00e9", "Basic Zm9vOmJhcg==", "Bearer " + "a" * 5000]
)
def test_a_malformed_credential_meets_a_standing_refusal_with_a_clear_429_and_otherwise_a_401(acme, authorization):
    """Whatever the Authorization header holds, the early check answers cleanly: the workspace's
    standing refusal (429 rate_limited); once it has passed, the API's own 401."""
    from django.test import Client

    the_workspace_refused(acme)
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=authorization)
    refused = client.get(WORKSPACE)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    refusals_forget()
    limits_cache_clear()
    unauthenticated = client.get(WORKSPACE)
    assert unauthenticated.status_code == 401, unauthenticated.content


def test_an_early_refusal_tells_a_retry_after_after_which_the_request_is_admitted(acme):
    """docs/limits.md: a refused request's headers are "of both, the one with the longer wait", and
    the early refusal (ApiRefusalMiddleware) answers "with the same body and headers as the
    limiter's refusal". Token A has spent its own burst (admitted) and token B's refusal leaves the
    workspace's refusal standing (1 s): A's next request, answered early, tells A's own wait (about
    2 s), after which it is admitted. It used to tell the workspace's 1 s alone, and a client
    honouring it was refused again."""
    refusals_forget()
    limit("acme", burst=2)  # workspace 1/s burst 2; each token 1 every 2 s, burst 1
    a, b = api(acme, issue(acme, name="a")), api(acme, issue(acme, name="b"))
    assert a.get(WORKSPACE).status_code == 200  # A's burst spent
    assert b.get(WORKSPACE).status_code == 200  # the workspace's burst spent
    assert b.get(WORKSPACE).status_code == 429  # both refuse: the workspace's refusal is remembered
    refused = a.get(WORKSPACE)
    assert refused.status_code == 429
    time.sleep(int(refused["Retry-After"]) + 0.05)
    assert a.get(WORKSPACE).status_code == 200, f"refused again after Retry-After {refused['Retry-After']}"

import time
import unicodedata

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from tests.conftest import PASSWORD, audit_events, client_for, free_port, tenant_user


def _login(client: Client, email: str, password: str = PASSWORD):
    return client.post("/login/", {"username": email, "password": password})


def test_it_signs_a_member_in_on_their_tenant_host(acme):
    client = Client(HTTP_HOST="acme.localhost")
    response = _login(client, "viewer@acme.test")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    viewer = tenant_user(acme, "viewer@acme.test")
    (event,) = audit_events("acme", action="auth.login")
    assert (event.actor_id, event.outcome, event.ip) == (f"user:{viewer.pk}", "success", "127.0.0.1")
    assert event.request_id and len(event.request_id) == 32


def test_a_wrong_password_is_refused_and_audited(acme):
    client = Client(HTTP_HOST="acme.localhost")
    response = _login(client, "viewer@acme.test", "wrong")
    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    viewer = tenant_user(acme, "viewer@acme.test")
    (event,) = audit_events("acme", action="auth.login.failed")
    assert (event.actor_id, event.outcome, event.target) == ("anonymous", "failure", f"accounts.user:{viewer.pk}")


def test_a_failed_login_of_an_unknown_account_keeps_no_trace_of_the_name_typed(acme):
    _login(Client(HTTP_HOST="acme.localhost"), "Nobody.Here@Example.test", "wrong")
    (event,) = audit_events("acme", action="auth.login.failed")
    assert event.target_type == "login" and len(event.target_id) == 32
    assert "nobody" not in (event.target_id + event.details).lower()


def test_a_member_of_one_tenant_cannot_sign_in_to_another(acme, globex):
    client = Client(HTTP_HOST="globex.localhost")
    response = _login(client, "owner@acme.test")
    assert response.status_code == 200
    assert "Please enter a correct email and password" in response.content.decode()
    assert client.get("/").status_code == 302


def test_tenant_members_cannot_sign_in_to_the_operator_console(acme):
    client = Client(HTTP_HOST="localhost")
    assert _login(client, "owner@acme.test").status_code == 200
    assert client.get("/").status_code == 302


def test_the_operator_console_refuses_a_tenant_session_and_anonymous_users(acme):
    anonymous = Client(HTTP_HOST="localhost").get("/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    # A tenant owner's cookie presented to the operator host.
    tenant_cookie = client_for(acme, "owner@acme.test").cookies
    client = Client(HTTP_HOST="localhost")
    client.cookies = tenant_cookie
    assert client.get("/").status_code == 302


def test_a_session_cookie_replayed_on_another_tenant_authenticates_nobody(acme, globex):
    """User ids collide across schemas (each has its own user table), so this is the attack."""
    acme_client = client_for(acme, "owner@acme.test")
    globex_client = Client(HTTP_HOST="globex.localhost")
    globex_client.cookies = acme_client.cookies
    response = globex_client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_session_key_known_to_two_schemas_is_bound_to_the_one_that_made_it(acme, globex):
    """Even if the same session key existed in both schemas, the binding refuses it."""
    from django.contrib.sessions.models import Session

    acme_client = client_for(acme, "owner@acme.test")
    key = acme_client.cookies["sessionid"].value
    with schema_context("acme"):
        session = Session.objects.get(session_key=key)
    with schema_context("globex"):
        Session.objects.create(session_key=key, session_data=session.session_data, expire_date=session.expire_date)
    globex_client = Client(HTTP_HOST="globex.localhost")
    globex_client.cookies = acme_client.cookies
    response = globex_client.get("/")
    assert response.status_code == 302
    with schema_context("globex"):
        assert not Session.objects.filter(session_key=key).exists()  # flushed


def test_cookies_are_host_only(acme):
    client = Client(HTTP_HOST="acme.localhost")
    _login(client, "viewer@acme.test")
    assert client.cookies["sessionid"]["domain"] == ""
    assert client.cookies["sessionid"]["httponly"] is True
    assert client.cookies["csrftoken"]["domain"] == ""


def test_login_attempts_are_throttled_per_account(acme, settings):
    settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT = "3/m"
    client = Client(HTTP_HOST="acme.localhost")
    for _ in range(3):
        assert _login(client, "viewer@acme.test", "wrong").status_code == 200
    response = _login(client, "viewer@acme.test", PASSWORD)  # even the right password now
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert b"login_throttled" in response.content
    assert SESSION_KEY not in client.session
    # Another account on the same tenant, and the same account elsewhere, are unaffected.
    assert _login(Client(HTTP_HOST="acme.localhost"), "owner@acme.test").status_code == 302
    assert _login(Client(HTTP_HOST="globex.localhost"), "owner@globex.test").status_code == 302
    assert [e.outcome for e in audit_events("acme", action="auth.login.throttled")] == ["denied"]


@pytest.mark.parametrize(
    ("member", "spelling"),
    [
        ("viewer@acme.test", " " * 240 + "viewer@acme.test"),  # padded: the cut at 254 made a new bucket each
        ("viewer@acme.test", "VIEWER@ACME.TEST "),
        ("zoe@bücher.test", "zoe@xn--bcher-kva.test"),
        ("zoe@bücher.test", unicodedata.normalize("NFD", "zoe@bücher.test")),
    ],
    ids=["padded", "case-and-space", "a-label", "nfd"],
)
def test_every_spelling_of_an_address_is_one_account_to_the_limits_and_the_trail(acme, settings, member, spelling):
    """The form, the per-account limit and the trail read a typed name alike (login_name): past
    the limit another spelling is refused too, even with the right password, and a failed
    attempt in it is audited against the member, not as an unknown name's hash."""
    with schema_context("acme"):
        user = User.objects.filter(email=member).first() or User.objects.create_user(member, PASSWORD, role="viewer")
    assert _login(Client(HTTP_HOST="acme.localhost"), spelling, "wrong").status_code == 200
    (failed,) = audit_events("acme", action="auth.login.failed")
    assert failed.target == f"accounts.user:{user.pk}"
    settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT = "3/m"
    client = Client(HTTP_HOST="acme.localhost")
    for _ in range(2):
        assert _login(client, member, "wrong").status_code == 200
    response = _login(client, spelling, PASSWORD)
    assert response.status_code == 429
    assert SESSION_KEY not in client.session


def test_login_attempts_are_throttled_per_client_address(acme, settings):
    settings.FOUNDRY_LOGIN_RATE_PER_IP = "4/m"
    client = Client(HTTP_HOST="acme.localhost")
    for i in range(4):
        _login(client, f"nobody{i}@acme.test", "wrong")
    assert _login(client, "owner@acme.test").status_code == 429


@pytest.mark.parametrize(
    "addresses",
    [["203.0.113.50"], [f"2001:db8:5:7::{n:x}" for n in range(1, 21)]],
    ids=["one-address", "one-ipv6-64"],
)
def test_an_address_refused_audits_once_a_minute_whatever_names_it_types(acme, settings, addresses):
    """Refused by its address's bucket, a client typing a new name each time (from a new address of
    its /64, which the limits count as one) appended an `auth.login.throttled` event per request to
    the workspace's trail, which nothing deletes: the audit window was the name's and the full
    address's, both the client's to choose. It is the refusing bucket's and the client's now."""
    settings.FOUNDRY_LOGIN_RATE_PER_IP = "2/m"
    for n in range(2):
        assert (
            _login(Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=addresses[0]), f"g{n}@acme.test", "x").status_code
            == 200
        )
    for n in range(20):
        client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=addresses[n % len(addresses)])
        assert _login(client, f"spray{n}@acme.test", "x").status_code == 429
    assert len(audit_events("acme", action="auth.login.throttled")) == 1


def test_a_workspace_refusing_a_flood_audits_it_once_a_minute(acme, settings):
    """Refused by the workspace's bucket, attempts from many addresses are one event a minute."""
    settings.FOUNDRY_LOGIN_RATE_PER_TENANT = "3/m"
    for n in range(3):
        assert (
            _login(Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=f"203.0.113.{n}"), "a@acme.test", "x").status_code
            == 200
        )
    for n in range(10):
        refused = _login(Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=f"198.51.100.{n}"), f"b{n}@acme.test", "x")
        assert refused.status_code == 429
    assert len(audit_events("acme", action="auth.login.throttled")) == 1


def test_logout_needs_post_and_ends_the_session(acme):
    client = client_for(acme, "owner@acme.test")
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_past_the_limit_even_the_right_password_waits_until_the_window_passes(acme, settings):
    settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT = "2/1s"  # two at once, then one each half second
    client = Client(HTTP_HOST="acme.localhost")
    assert [_login(client, "viewer@acme.test", "wrong").status_code for _ in range(2)] == [200, 200]
    refused = _login(client, "viewer@acme.test", PASSWORD)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert refused["RateLimit-Policy"] == '"default";q=2;w=1'
    assert refused["RateLimit"].startswith('"default";r=0;t=')
    assert "Too many sign-in attempts. Wait 1 second and try again." in refused.content.decode()
    assert _login(client, "viewer@acme.test", PASSWORD).status_code == 429
    assert SESSION_KEY not in client.session
    time.sleep(0.55)
    assert _login(client, "viewer@acme.test", PASSWORD).status_code == 302
    assert SESSION_KEY in client.session


def test_a_flood_of_sign_ins_at_one_tenant_leaves_another_alone(acme, globex, settings):
    """Credential stuffing from many addresses: the workspace's own bucket stops it there."""
    settings.FOUNDRY_LOGIN_RATE_PER_TENANT = "6/m"
    for n in range(6):
        client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=f"203.0.113.{n}")
        assert _login(client, f"victim{n}@acme.test", "guess").status_code == 200
    elsewhere = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR="198.51.100.7")
    assert _login(elsewhere, "owner@acme.test").status_code == 429
    assert _login(Client(HTTP_HOST="globex.localhost"), "owner@globex.test").status_code == 302


def test_starting_single_sign_on_counts_as_a_sign_in_attempt(acme, settings):
    settings.FOUNDRY_LOGIN_RATE_PER_IP = "2/m"
    client = Client(HTTP_HOST="acme.localhost")
    assert [client.get("/sso/login/").status_code for _ in range(2)] == [404, 404]  # no SSO here: still counted
    refused = client.get("/sso/login/")
    assert refused.status_code == 429 and refused["Retry-After"] == "30"
    assert _login(client, "owner@acme.test").status_code == 429  # the same address
    assert len(audit_events("acme", action="auth.login.throttled", data={"method": "sso"})) == 1


def test_redis_unreachable_sign_ins_go_on_counted_in_the_process(acme, settings):
    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT = "2/m"
    client = Client(HTTP_HOST="acme.localhost")
    started = time.monotonic()
    assert _login(client, "viewer@acme.test").status_code == 302
    assert _login(Client(HTTP_HOST="acme.localhost"), "viewer@acme.test", "wrong").status_code == 200
    assert _login(Client(HTTP_HOST="acme.localhost"), "viewer@acme.test", "wrong").status_code == 429
    assert time.monotonic() - started < 3  # no hang on the unreachable Redis


def test_redis_unreachable_sign_ins_are_refused_when_set_closed(acme, settings):
    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.FOUNDRY_RATELIMIT_ON_REDIS_ERROR_LOGINS = "closed"
    response = _login(Client(HTTP_HOST="acme.localhost"), "viewer@acme.test")
    assert (response.status_code, response["Retry-After"]) == (503, "1")
    assert b"rate_limiter_unavailable" in response.content


def test_absurd_sign_in_input_is_counted_not_a_500(acme):
    client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR="")
    assert _login(client, "\x00 " * 500 + "é" * 300, "x").status_code == 200
    assert client.post("/login/", {"username": ["a", "b"]}).status_code == 200


def test_a_member_signs_in_with_their_address_in_any_case(acme):
    # Addresses are stored lowercased; the one typed is the same member whatever its case.
    response = _login(Client(HTTP_HOST="acme.localhost"), " Owner@Acme.TEST", PASSWORD)
    assert response.status_code == 302


def test_one_ipv6_client_cannot_dodge_the_per_account_limit_by_rotating_addresses_in_its_prefix(acme, settings):
    """An IPv6 client counts as its /64 (it holds the whole prefix and could take a new address
    for each guess): the fourth guess from the same /64 is refused like the fourth from one IPv4
    address (docs/limits.md)."""
    settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT = "3/m"
    codes = []
    for host in range(1, 7):  # six guesses, each from another address of the same /64
        client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=f"2001:db8:1:2::{host:x}")
        codes.append(client.post("/login/", {"username": "viewer@acme.test", "password": "wrong"}).status_code)
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429, 429], codes


def test_an_attempt_the_workspaces_bucket_refuses_spends_nothing_of_the_members_own(acme, settings):
    """A flood from elsewhere spends the workspace's bucket: a member's attempts refused meanwhile
    spend none of their account's or address's, so once the workspace's refills they sign in."""
    # 3 per 9 s: one attempt back every 3 s, so the flood's slow sign-ins (password hashing on a
    # busy machine) cannot refill the bucket before the member tries (at 3/s, one did in CI).
    settings.FOUNDRY_LOGIN_RATE_PER_TENANT = "3/9s"
    settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT = "2/m"
    member = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR="198.51.100.7")
    for n in range(3):  # the flood: the workspace's 3 attempts spent
        assert (
            _login(Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=f"203.0.113.{n}"), f"v{n}@acme.test", "x").status_code
            == 200
        )
    assert [_login(member, "owner@acme.test").status_code for _ in range(3)] == [429] * 3
    time.sleep(3.1)  # the workspace's bucket refills by one; the member's own was never spent
    assert _login(member, "owner@acme.test").status_code == 302

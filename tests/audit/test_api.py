"""/api/v1/audit: events (filter, order, pages, one by seq), verification, signed checkpoints —
who may read them, and that a workspace only ever sees its own chain. Plus the public keys."""

import base64
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.cache import cache
from django.test import Client
from django_tenants.utils import schema_context

from apps.audit.chain import checkpoint_message
from apps.audit.services import audit_actor_erase, audit_checkpoint_sign, audit_record, checkpoint_dict
from tests.api.conftest import api, issue
from tests.conftest import audit_events, tenant_user


@pytest.fixture
def acme_admin(acme) -> Client:
    return api(acme, issue(acme, role="admin", scopes=("read",)))


@pytest.fixture
def globex_admin(globex) -> Client:
    return api(globex, issue(globex, role="admin", scopes=("read",)))


def record(tenant, action: str, **kwargs) -> int:
    with schema_context(tenant.schema_name):
        return audit_record(action=action, **kwargs).seq


def actions(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [event["action"] for event in response.json()["events"]]


@contextmanager
def tampered(superuser, tenant, seq: int):
    """As an attacker with database access, change event `seq`'s outcome; put it back after."""
    (outcome,) = superuser.execute(
        "SELECT outcome FROM audit_auditevent WHERE tenant_id = %s AND seq = %s", [tenant.pk, seq]
    ).fetchone()
    changed = "denied" if outcome != "denied" else "failure"
    sql = "UPDATE audit_auditevent SET outcome = %s WHERE tenant_id = %s AND seq = %s"
    superuser.execute("SET session_replication_role = replica")
    superuser.execute(sql, [changed, tenant.pk, seq])
    try:
        yield
    finally:
        superuser.execute(sql, [outcome, tenant.pk, seq])
        superuser.execute("SET session_replication_role = origin")


# --- events --------------------------------------------------------------------------------------


def test_it_lists_the_workspaces_events_newest_first_with_every_field(acme, acme_admin):
    owner = tenant_user(acme, "owner@acme.test")
    seq = record(acme, "test.api.listed", actor=owner, target=("thing", 7), data={"ünï": [1, None]})
    response = acme_admin.get("/api/v1/audit/events", {"page_size": 1})
    assert response.status_code == 200
    (event,) = response.json()["events"]
    (stored,) = audit_events("acme", seq=seq)
    assert event == {
        "chain": acme.pk,
        "seq": seq,
        "occurred_at": stored.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": {
            "id": f"user:{owner.pk}",
            "type": "user",
            "name": owner.display_name,
            "email": "owner@acme.test",
            "erased": False,
        },
        "action": "test.api.listed",
        "target_type": "thing",
        "target_id": "7",
        "outcome": "success",
        "ip": "",
        "user_agent": "",
        "request_id": "",
        "details": {"ünï": [1, None]},
        "prev_hash": stored.prev_hash,
        "hash": stored.hash,
    }
    assert response.json()["next_page_token"]


def test_it_filters_on_actor_action_target_outcome_time_and_seq(acme, acme_admin):
    owner = tenant_user(acme, "owner@acme.test")
    first = record(acme, "test.filter.login", actor=owner, outcome="failure")
    record(acme, "test.filter.login", actor="robot", target=("manifest", "triage"))
    record(acme, "test.filter.deploy", actor=owner, target=("manifest", "triage"), outcome="denied")
    cases = {
        'action = "test.filter.*"': ["test.filter.deploy", "test.filter.login", "test.filter.login"],
        f'actor = "user:{owner.pk}" AND action = "test.filter.*"': ["test.filter.deploy", "test.filter.login"],
        'actor_type = service AND action = "test.*"': ["test.filter.login"],
        "outcome = failure": ["test.filter.login"],
        "outcome = (failure OR denied)": ["test.filter.deploy", "test.filter.login"],
        'target_type = manifest AND target_id = "triage"': ["test.filter.deploy", "test.filter.login"],
        f"seq >= {first} AND seq < {first + 2}": ["test.filter.login", "test.filter.login"],
    }
    for text, expected in cases.items():
        assert actions(acme_admin.get("/api/v1/audit/events", {"filter": text})) == expected, text
    (stored,) = audit_events("acme", seq=first)
    moment = stored.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for field in ("time", "occurred_at"):
        response = acme_admin.get("/api/v1/audit/events", {"filter": f'{field} >= "{moment}"'})
        assert [e["seq"] for e in response.json()["events"]] == [first + 2, first + 1, first]


def test_it_orders_and_pages_with_tokens(acme, acme_admin):
    seqs = [record(acme, f"test.page.{n}") for n in range(5)]
    query = {"filter": 'action = "test.page.*"', "order_by": "seq", "page_size": 2}
    seen, token = [], None
    for _ in range(3):
        response = acme_admin.get("/api/v1/audit/events", {**query, **({"page_token": token} if token else {})})
        seen += [e["seq"] for e in response.json()["events"]]
        token = response.json()["next_page_token"]
    assert seen == seqs and token == ""
    newest = acme_admin.get("/api/v1/audit/events", {"filter": 'action = "test.page.*"', "page_size": 2})
    assert [e["seq"] for e in newest.json()["events"]] == seqs[:-3:-1]


@pytest.mark.parametrize(
    ("params", "code", "position"),
    [
        ({"filter": "outcome = maybe"}, "invalid_value", 10),
        ({"filter": "hash = x"}, "unknown_field", 0),
        ({"filter": 'time > "yesterday"'}, "invalid_value", 7),
        ({"filter": "seq > twelve"}, "invalid_value", 6),
        ({"filter": "action = "}, "syntax_error", 9),
        ({"order_by": "action"}, "unknown_order_field", 0),
        ({"page_size": "-1"}, "invalid_page_size", None),
        ({"page_token": "forged"}, "invalid_page_token", None),
    ],
)
def test_bad_list_parameters_are_400_with_a_code_and_position(acme_admin, params, code, position):
    response = acme_admin.get("/api/v1/audit/events", params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error.get("position")) == (code, position)


def test_it_gets_one_event_by_seq(acme, acme_admin):
    seq = record(acme, "test.api.one", data={"n": 1})
    response = acme_admin.get(f"/api/v1/audit/events/{seq}")
    assert response.status_code == 200
    assert (response.json()["seq"], response.json()["action"], response.json()["details"]) == (
        seq,
        "test.api.one",
        {"n": 1},
    )
    for missing in (seq + 1, 0, 10**30):
        response = acme_admin.get(f"/api/v1/audit/events/{missing}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert acme_admin.get("/api/v1/audit/events/-1").status_code == 404
    assert acme_admin.get("/api/v1/audit/events/abc").status_code == 404


def test_an_erased_actor_is_shown_by_pseudonymous_id_only(acme, acme_admin):
    owner = tenant_user(acme, "owner@acme.test")
    seq = record(acme, "test.api.erased", actor=owner)
    assert audit_actor_erase(tenant_id=acme.pk, actor_id=f"user:{owner.pk}")
    actor = acme_admin.get(f"/api/v1/audit/events/{seq}").json()["actor"]
    assert actor == {"id": f"user:{owner.pk}", "type": "user", "name": None, "email": None, "erased": True}
    assert acme_admin.get("/api/v1/audit/verify").json()["intact"] is True


# --- verification and checkpoints ----------------------------------------------------------------


def test_verify_proves_the_chain_intact_up_to_its_signed_checkpoint(acme, acme_admin):
    record(acme, "test.api.verify")
    checkpoint = audit_checkpoint_sign(acme.pk)
    later = record(acme, "test.api.after_checkpoint")
    response = acme_admin.get("/api/v1/audit/verify")
    assert response.status_code == 200
    body = response.json()
    assert body["intact"] is True and body["first_break"] is None and body["problems"] == []
    assert (body["chain"], body["last_seq"], body["signed_seq"], body["checkpoints"]) == (
        acme.pk,
        later,
        checkpoint.seq,
        1,
    )
    assert body["events"] == len(audit_events("acme"))


def test_verify_names_the_first_broken_event(superuser, acme, acme_admin, globex_admin):
    record(acme, "test.api.after_the_tampered_one")
    with tampered(superuser, acme, 1):  # the session's committed `tenant.provisioned`
        body = acme_admin.get("/api/v1/audit/verify").json()
        assert body["intact"] is False
        assert body["first_break"] == {"seq": 1, "kind": "altered", "message": "#1's content does not give its hash"}
        # Another workspace's chain is its own: untouched, intact.
        assert globex_admin.get("/api/v1/audit/verify").json()["intact"] is True
    # Kept a minute (apps/audit/verify.py chain_status); once it has expired, the restored row verifies.
    with schema_context(acme.schema_name):
        cache.delete(f"audit:chain-status:{acme.pk}")
    assert acme_admin.get("/api/v1/audit/verify").json()["intact"] is True


def test_checkpoints_are_listed_as_exported_and_verify_with_the_published_key(acme, acme_admin):
    record(acme, "test.api.checkpoint")
    checkpoint = audit_checkpoint_sign(acme.pk)
    response = acme_admin.get("/api/v1/audit/checkpoints")
    assert response.status_code == 200
    assert response.json() == {"checkpoints": [checkpoint_dict(checkpoint)], "next_page_token": ""}
    listed = response.json()["checkpoints"][0]
    keys = {
        k["key_id"]: k
        for k in Client(HTTP_HOST="acme.localhost").get("/.well-known/foundry-audit-keys.json").json()["keys"]
    }
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(keys[listed["key_id"]]["public_key"]))
    signed_at = datetime.fromisoformat(listed["signed_at"].replace("Z", "+00:00"))
    message = checkpoint_message(
        chain_id=acme.pk, tenant_id=acme.pk, seq=listed["seq"], hash=listed["hash"], signed_at=signed_at
    )
    public.verify(base64.b64decode(listed["signature"]), message)  # raises if it does not verify
    bad = acme_admin.get("/api/v1/audit/checkpoints", {"filter": "signature = x"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "unknown_field")


# --- who may read it -----------------------------------------------------------------------------

PATHS = ["/api/v1/audit/events", "/api/v1/audit/events/1", "/api/v1/audit/verify", "/api/v1/audit/checkpoints"]


@pytest.mark.parametrize("role", ["viewer", "developer", "operator"])
def test_roles_without_audit_view_are_refused(acme, role):
    client = api(acme, issue(acme, role=role, scopes=("read", "write", "run")))
    for path in PATHS:
        response = client.get(path)
        assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied"), path


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_read_the_trail_with_the_read_scope(acme, role):
    client = api(acme, issue(acme, role=role, scopes=("read",)))
    for path in PATHS:
        assert client.get(path).status_code == 200, path


def test_a_token_without_the_read_scope_is_refused(acme):
    client = api(acme, issue(acme, role="admin", scopes=("write", "run", "admin")))
    response = client.get("/api/v1/audit/events")
    assert response.status_code == 403
    assert "'read' scope" in response.json()["error"]["message"]


def test_signed_in_admins_may_call_it_from_the_console_session(acme):
    from tests.conftest import client_for

    assert client_for(acme, "admin@acme.test").get("/api/v1/audit/events").status_code == 200
    assert client_for(acme, "viewer@acme.test").get("/api/v1/audit/events").status_code == 403
    assert Client(HTTP_HOST="acme.localhost").get("/api/v1/audit/events").status_code == 401


# --- isolation -----------------------------------------------------------------------------------


def test_a_workspace_never_sees_another_workspaces_events(acme, globex, acme_admin, globex_admin):
    acme_last = record(acme, "test.isolation.acme")
    globex_seq = record(globex, "test.isolation.globex_secret")
    while globex_seq <= acme_last + 1:
        globex_seq = record(globex, "test.isolation.globex_secret")
    listed = acme_admin.get("/api/v1/audit/events", {"page_size": 1000})
    assert "test.isolation.globex_secret" not in actions(listed)
    assert {e["chain"] for e in listed.json()["events"]} == {acme.pk}
    assert (
        acme_admin.get("/api/v1/audit/events", {"filter": 'action = "test.isolation.globex*"'}).json()["events"] == []
    )
    # By sequence number: acme's own event, or none — never globex's.
    assert acme_admin.get(f"/api/v1/audit/events/{globex_seq}").status_code == 404
    same_number = acme_admin.get(f"/api/v1/audit/events/{acme_last}").json()
    assert (same_number["chain"], same_number["action"]) == (acme.pk, "test.isolation.acme")
    assert globex_admin.get(f"/api/v1/audit/events/{globex_seq}").json()["chain"] == globex.pk
    # Verification counts only the caller's chain.
    verified = acme_admin.get("/api/v1/audit/verify").json()
    assert (verified["chain"], verified["events"], verified["last_seq"]) == (acme.pk, acme_last, acme_last)


def test_a_page_token_or_a_token_does_not_cross_workspaces(acme, globex, acme_admin, globex_admin):
    token = acme_admin.get("/api/v1/audit/events", {"page_size": 1}).json()["next_page_token"]
    response = globex_admin.get("/api/v1/audit/events", {"page_size": 1, "page_token": token})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "page_token_mismatch")
    acme_token = issue(acme, role="owner", scopes=("read",))
    assert api(globex, acme_token).get("/api/v1/audit/events").status_code == 401


def test_the_api_is_not_served_on_the_operator_host(operator_client):
    response = operator_client.get("/api/v1/audit/events")
    assert response.status_code == 404


# --- public keys ---------------------------------------------------------------------------------


def test_the_public_keys_are_published_on_every_host_without_signing_in(acme, globex):
    from apps.audit.signing import public_keys

    expected = {"keys": [{"key_id": k, "alg": "Ed25519", "public_key": v} for k, v in public_keys().items()]}
    assert expected["keys"] and expected["keys"][0]["key_id"] == "test1"
    for host in ("acme.localhost", "globex.localhost", "localhost"):
        response = Client(HTTP_HOST=host).get("/.well-known/foundry-audit-keys.json")
        assert response.status_code == 200, host
        assert response.json() == expected
        assert "public" in response["Cache-Control"] and "max-age=3600" in response["Cache-Control"]
    assert Client(HTTP_HOST="localhost").post("/.well-known/foundry-audit-keys.json").status_code == 405
    assert Client(HTTP_HOST="nobody.example").get("/.well-known/foundry-audit-keys.json").status_code == 404


def test_a_retired_key_stays_published_for_verification(acme, settings):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = (
        Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = ["old2025:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")]
    keys = Client(HTTP_HOST="acme.localhost").get("/.well-known/foundry-audit-keys.json").json()["keys"]
    assert [k["key_id"] for k in keys] == ["test1", "old2025"]
    assert base64.b64decode(keys[1]["public_key"]) == raw


@pytest.mark.parametrize(
    ("path", "text", "code"),
    [
        ("/api/v1/audit/events", 'action = "a\x00b"', "syntax_error"),
        ("/api/v1/audit/events", "action = a\x00b", "syntax_error"),
        ("/api/v1/audit/events", 'time > "9999-12-31T23:59:59-01:00"', "invalid_value"),
        ("/api/v1/audit/checkpoints", 'key_id = "\x00"', "syntax_error"),
        ("/api/v1/audit/checkpoints", 'signed_at < "0001-01-01T00:00:00+01:00"', "invalid_value"),
    ],
)
def test_nul_characters_and_impossible_times_are_400_not_a_server_error(acme_admin, path, text, code):
    response = acme_admin.get(path, {"filter": text})
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)

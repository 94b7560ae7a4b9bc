"""GET /api/v1/audit/verify answers from the verification the console's badge shares: kept a
minute, made by one request at a time (`chain_status`). Before, every call walked and re-hashed
the whole chain in a snapshot of its own: four calls at once on 100,000 events took 15.8 s of
server time (four of ~3.9 s) and held four snapshots open meanwhile, and a read token's burst bought
minutes of it (found by the resource-exhaustion review)."""

from django.core.cache import cache
from django_tenants.utils import schema_context

from apps.audit import verify as verification
from apps.audit.services import audit_record
from tests.api.conftest import api, issue


def _verifications(monkeypatch) -> list[int]:
    """The chains verified from now on (the real verification, counted)."""
    verified, real = [], verification.audit_verify

    def counted(chain):
        verified.append(chain)
        return real(chain)

    monkeypatch.setattr(verification, "audit_verify", counted)
    return verified


def _forget(tenant) -> None:
    with schema_context(tenant.schema_name):  # the cache's keys are the workspace's (its prefix)
        cache.delete(f"audit:chain-status:{tenant.pk}")


def test_calls_within_a_minute_share_one_verification(acme, monkeypatch):
    _forget(acme)
    verified = _verifications(monkeypatch)
    client = api(acme, issue(acme))
    first, second = client.get("/api/v1/audit/verify"), client.get("/api/v1/audit/verify")
    assert first.status_code == second.status_code == 200
    assert first.json()["intact"] is True and first.json()["chain"] == acme.pk
    assert first.json()["checked_at"] == second.json()["checked_at"]
    assert verified == [acme.pk]


def test_a_call_while_the_chain_is_verified_is_told_to_ask_again(acme):
    _forget(acme)
    with schema_context(acme.schema_name):
        cache.set(f"audit:chain-status:{acme.pk}:claim", 1, 60)  # another request verifies it now
    try:
        response = api(acme, issue(acme)).get("/api/v1/audit/verify")
        assert response.status_code == 409 and response["Retry-After"] == "5"
        assert response.json()["error"]["code"] == "verification_running"
    finally:
        with schema_context(acme.schema_name):
            cache.delete(f"audit:chain-status:{acme.pk}:claim")


def test_one_workspaces_kept_verification_never_answers_for_another(acme, globex, monkeypatch):
    _forget(acme)
    _forget(globex)
    with schema_context(globex.schema_name):
        audit_record(action="test.event", actor="test", target=("thing", "1"), data={})
    verified = _verifications(monkeypatch)
    ours = api(acme, issue(acme)).get("/api/v1/audit/verify").json()
    theirs = api(globex, issue(globex)).get("/api/v1/audit/verify").json()
    assert (ours["chain"], theirs["chain"]) == (acme.pk, globex.pk)
    assert ours["last_hash"] != theirs["last_hash"]
    assert verified == [acme.pk, globex.pk]

"""The published OpenAPI document (/api/schema/) against what the API really answers.

Each test makes a real request with the test fixtures and checks the answer against the
operation's documented responses (tests/api/openapi/oas.py): a status the operation does not list
is one a generated client has no type for, and a request body the schema allows but the API
refuses is one a generated client sends in good faith."""

import json

import pytest
from django_tenants.utils import schema_context

from apps.catalog.models import Document, Kind
from tests.api.conftest import api, issue
from tests.api.openapi.oas import document, problems
from tests.catalog.test_migrate_and_rollback_checks import FINANCE, TRIAGE, _legacy_version
from tests.conftest import free_port
from tests.runs.conftest import deploy
from tests.runs.test_api import make_run


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def owner(acme):
    return api(acme, issue(acme, role="owner"))


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


# --- 422 document_invalid on deploy and rollback (docs/manifests.md) ----------------------------


def test_deploy_and_rollback_document_their_422_document_invalid(acme, owner):
    """docs/manifests.md: deploy and rollback answer `422 document_invalid` when the version does
    not pass today's checks; their operations list it, as publish and migrate do."""
    legacy = TRIAGE.replace("max_steps: 12", "max_steps: 0")
    assert post(owner, "/api/v1/domains", {"content": FINANCE}).status_code == 201
    assert post(owner, "/api/v1/agents", {"content": TRIAGE}).status_code == 201  # v1
    with schema_context(acme.schema_name):
        _legacy_version(Document.objects.get(kind=Kind.AGENT, name="invoice-triage"), legacy)  # v2
    assert (
        post(owner, "/api/v1/agents", {"content": TRIAGE.replace("max_steps: 12", "max_steps: 11")}).status_code == 201
    )

    deployed = post(owner, "/api/v1/agents/invoice-triage/deploy", {"version": 2})
    rolled = post(owner, "/api/v1/agents/invoice-triage/rollback", {"version": 2})
    for response in (deployed, rolled):
        assert (response.status_code, response.json()["error"]["code"]) == (422, "document_invalid")
    found = problems(acme, "POST", "/api/v1/agents/invoice-triage/deploy", deployed)
    found += problems(acme, "POST", "/api/v1/agents/invoice-triage/rollback", rolled)
    domains_rollback = document(acme)["paths"]["/api/v1/domains/{name}/rollback"]["post"]["responses"]
    if "422" not in domains_rollback:
        found.append("POST /api/v1/domains/{name}/rollback: 422 not documented")
    assert not found, "\n".join(found)


# --- PATCH bodies: the schema says optional, the API requires them -----------------------------


@pytest.mark.parametrize(
    ("path", "component", "field"),
    [
        ("/api/v1/members/{id}", "PatchedMemberUpdateInputRequest", "role"),
        ("/api/v1/workspace", "PatchedWorkspaceSettingsInputRequest", "trace_content"),
    ],
)
def test_a_patch_body_the_schema_allows_is_accepted(acme, owner, path, component, field):
    """The view validates a PATCH body whole (no partial update): the Patched* component marks
    what it requires as required, so a body the schema allows is one the API takes."""
    member = owner.get('/api/v1/members?filter=email = "viewer@acme.test"').json()["members"][0]["id"]
    path = path.replace("{id}", str(member))
    schema = document(acme)
    operation = schema["paths"][path.replace(str(member), "{member_id}")]["patch"]
    body_schema = schema["components"]["schemas"][component]
    documented_required = operation["requestBody"].get("required", False) or field in body_schema.get("required", [])
    response = owner.patch(path, "{}", content_type="application/json")
    accepted = response.status_code == 200
    assert documented_required or accepted, (
        f"PATCH {path} {{}}: documented as valid (body optional, {field} optional) but answered "
        f"{response.status_code} {response.content[:160]!r}"
    )


# --- 503 rate_limiter_unavailable on writes (docs/limits.md) -----------------------------------


def test_writes_document_the_503_they_answer_while_the_rate_limiter_is_away(acme, owner, settings):
    """docs/limits.md / README: with FOUNDRY_RATELIMIT_ON_REDIS_ERROR_WRITES=closed (the default),
    API writes are refused `503 rate_limiter_unavailable` while Redis is unreachable; every write
    operation lists that 503."""
    agent = deploy(acme, FINANCE, TRIAGE)
    run = make_run(acme, agent)
    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    found = []
    for method, path, body in (
        ("POST", "/api/v1/tokens", {"name": "ci", "role": "viewer", "scopes": ["read"]}),
        ("POST", "/api/v1/runs", {"agent": "invoice-triage", "input": "x"}),
        ("POST", f"/api/v1/runs/{run.pk}/cancel", None),
        ("DELETE", "/api/v1/tokens/1", None),
        ("PUT", "/api/v1/budgets", {"project": "", "monthly_tokens": 10}),
    ):
        response = owner.generic(method, path, json.dumps(body) if body else "", content_type="application/json")
        assert (response.status_code, response.json()["error"]["code"]) == (503, "rate_limiter_unavailable")
        found += problems(acme, method, path, response)
    assert not found, "\n".join(found)


# --- 413 on writes that take no body -----------------------------------------------------------


def test_bodyless_writes_document_the_413_they_answer(acme, owner, media):
    """TenantAPIView.initial parses the body of every write, also of those whose view takes none
    (so 415 is documented there), and a body over 4 MiB is `413 request_too_large`: documented
    on those operations too."""
    agent = deploy(acme, FINANCE, TRIAGE)
    run = make_run(acme, agent)
    big = json.dumps({"x": "y" * (5 * 1024 * 1024)})
    found = []
    for path in ("/api/v1/exports", f"/api/v1/runs/{run.pk}/cancel", "/api/v1/retention/preview"):
        response = owner.post(path, big, content_type="application/json")
        assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
        found += problems(acme, "POST", path, response)
    assert not found, "\n".join(found)

"""Every security-relevant action (PRODUCT.md, "Audit") that exists today, driven through the
interface a person or a script uses — console, API, git, management command — records exactly
one event of its action in the right chain, with the right actor and outcome, and with the
address and the request id (the one the response names) wherever there was a request."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add, member_invite_url
from apps.catalog.history import history_build
from apps.catalog.services import agent_deploy, version_publish
from apps.providers.services import credential_set
from apps.runs.models import Run
from apps.runs.services import run_start
from apps.runs.tasks import run_execute
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_suspend
from apps.tokens.models import ApiToken
from tests.api.conftest import api, issue
from tests.catalog.conftest import example
from tests.conftest import PASSWORD, audit_events, client_for, tenant_user

FINANCE = example("domains/finance.yaml")
FINANCE_V2 = FINANCE.replace("    AP:", "    PO: Purchase order.\n    AP:")
TRIAGE = example("agents/invoice-triage.yaml")
SMALL = "Triage invoice INV-1001."
LARGE = "Look up the 25,000 EUR invoice."  # its call waits for an approval
NO_REQUEST = None
WATCHED = ("acme", "public")


@dataclass
class Done:
    """What a driver did: the response (None: no request, e.g. a command) and who should be named."""

    response: HttpResponse | None
    actor: str
    chain: str = "acme"  # schema whose chain gets the event ("public": the platform's)
    also: dict[str, int] = field(default_factory=dict)  # other actions of the same chain, and how many
    data: dict = field(default_factory=dict)  # items the event's details hold


@dataclass
class World:
    acme: Tenant
    settings: object
    before: dict[str, list] | None = None  # the chains as they were just before the action

    def watch(self) -> None:
        """Drivers call this after their setup, just before the action itself."""
        self.before = {schema: audit_events(schema) for schema in WATCHED}

    def owner(self) -> User:
        return tenant_user(self.acme, "owner@acme.test")

    def console(self, email: str = "owner@acme.test") -> Client:
        return client_for(self.acme, email)

    def token(self, **kwargs) -> tuple[Client, str]:
        """An API client with a fresh admin token of acme, and the actor id it is recorded as."""
        plaintext = issue(self.acme, **kwargs)
        return api(self.acme, plaintext), f"token:{plaintext[3:15]}"

    def publish(self, *sources: str):
        with schema_context("acme"):
            return [version_publish(actor=self.owner(), source=s, message="setup").version for s in sources]

    def deploy_triage(self):
        *_, agent = self.publish(FINANCE, TRIAGE)
        with schema_context("acme"):
            agent_deploy(actor=self.owner(), document=agent.document, number=agent.number)
            agent.document.refresh_from_db()
        return agent.document

    def waiting_run(self) -> Run:
        agent = self.deploy_triage()
        with schema_context("acme"):
            run = run_start(actor=self.owner(), agent=agent, input=LARGE)
        # Executed here as the worker would (the test's transaction never commits).
        assert run_execute.apply(args=["acme", str(run.pk)]).get() == Run.Status.WAITING_APPROVAL
        return run

    def pending_member(self) -> User:
        with schema_context("acme"):
            return member_add(actor=self.owner(), email="pending@acme.test", role=Role.VIEWER)

    def provider_key(self) -> None:
        self.settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


def post_json(client: Client, path: str, body: dict | None = None, method: str = "post") -> HttpResponse:
    return getattr(client, method)(path, json.dumps(body or {}), content_type="application/json")


def user_id(email: str, tenant: Tenant | None) -> str:
    with schema_context(tenant.schema_name if tenant else "public"):
        user = User.objects.get(email=email)
    return f"{'user' if tenant else 'operator'}:{user.pk}"


# --- the drivers, one per action and interface ------------------------------------------------


def sign_in(w: World) -> Done:
    w.watch()
    response = Client(HTTP_HOST="acme.localhost").post(
        "/login/", {"username": "viewer@acme.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    return Done(response, user_id("viewer@acme.test", w.acme))


def operator_sign_in(w: World) -> Done:
    w.watch()
    response = Client(HTTP_HOST="localhost").post(
        "/login/", {"username": "operator@platform.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    return Done(response, user_id("operator@platform.test", None), chain="public")


def sign_in_failure(w: World) -> Done:
    w.watch()
    response = Client(HTTP_HOST="acme.localhost").post("/login/", {"username": "viewer@acme.test", "password": "no"})
    assert response.status_code == 200
    return Done(response, "anonymous")


def sign_in_throttled(w: World) -> Done:
    w.settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT = "1/m"
    client = Client(HTTP_HOST="acme.localhost")
    client.post("/login/", {"username": "viewer@acme.test", "password": "no"})  # a failure, and the limit
    w.watch()
    response = client.post("/login/", {"username": "viewer@acme.test", "password": PASSWORD})
    assert response.status_code == 429
    return Done(response, "anonymous", also={"auth.login.failed": 0, "auth.login": 0})


def sign_out(w: World) -> Done:
    w.watch()
    response = w.console("viewer@acme.test").post("/logout/")
    assert response.status_code == 302
    return Done(response, user_id("viewer@acme.test", w.acme))


def invitation_issued(w: World) -> Done:
    member = w.pending_member()
    w.watch()
    response = w.console().post(f"/members/{member.pk}/invite/")
    assert response.status_code == 200
    return Done(response, user_id("owner@acme.test", w.acme))


def invitation_accepted(w: World) -> Done:
    member = w.pending_member()
    with schema_context("acme"):
        url = member_invite_url(user=member, base_url="http://acme.localhost/")
    visitor = Client(HTTP_HOST="acme.localhost")
    form = visitor.get(url)
    password = "a-long-and-new-passphrase-41"
    w.watch()
    response = visitor.post(form.url, {"new_password1": password, "new_password2": password})
    assert response.status_code == 302
    return Done(response, f"user:{member.pk}")


def member_added(w: World) -> Done:
    w.watch()
    response = w.console().post("/members/add/", {"email": "new@acme.test", "role": Role.VIEWER, "full_name": ""})
    assert response.status_code == 200
    return Done(response, user_id("owner@acme.test", w.acme))


def member_added_over_the_api(w: World) -> Done:
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/members", {"email": "new@acme.test", "role": Role.VIEWER})
    assert response.status_code == 201, response.content
    return Done(response, actor)


def member_role_changed(w: World) -> Done:
    viewer = tenant_user(w.acme, "viewer@acme.test")
    w.watch()
    response = w.console().post(f"/members/{viewer.pk}/role/", {"role": Role.DEVELOPER})
    assert response.status_code == 302
    return Done(response, user_id("owner@acme.test", w.acme))


def member_removed(w: World) -> Done:
    viewer = tenant_user(w.acme, "viewer@acme.test")
    w.watch()
    response = w.console().post(f"/members/{viewer.pk}/remove/")
    assert response.status_code == 302
    return Done(response, user_id("owner@acme.test", w.acme))


def token_issued(w: World) -> Done:
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/tokens", {"name": "ci", "role": Role.DEVELOPER, "scopes": ["read"]})
    assert response.status_code == 201, response.content
    return Done(response, actor)


def token_issued_in_the_console(w: World) -> Done:
    w.watch()
    response = w.console().post("/settings/tokens/new/", {"name": "ci", "role": Role.DEVELOPER, "scopes": ["read"]})
    assert response.status_code == 200 and response.context["plaintext"]
    return Done(response, user_id("owner@acme.test", w.acme))


def token_revoked(w: World) -> Done:
    doomed = issue(w.acme, name="doomed")
    with schema_context("acme"):
        token = ApiToken.objects.get(prefix=doomed[3:15])
    w.watch()
    response = w.console().post(f"/settings/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    return Done(response, user_id("owner@acme.test", w.acme))


def token_revoked_over_the_api(w: World) -> Done:
    doomed = issue(w.acme, name="doomed")
    with schema_context("acme"):
        token = ApiToken.objects.get(prefix=doomed[3:15])
    client, actor = w.token()
    w.watch()
    response = client.delete(f"/api/v1/tokens/{token.pk}")
    assert response.status_code == 200
    return Done(response, actor)


def token_revoked_by_command(w: World) -> Done:
    doomed = issue(w.acme, name="doomed")
    w.watch()
    call_command("revoke_api_token", "acme", doomed[3:15], stdout=StringIO())
    return Done(NO_REQUEST, "service:cli:revoke_api_token")


def dis_published(w: World) -> Done:
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/domains", {"content": FINANCE})
    assert response.status_code == 201, response.content
    return Done(response, actor)


def dis_rolled_back(w: World) -> Done:
    w.publish(FINANCE, FINANCE_V2)
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/domains/finance/rollback", {"version": 1})
    assert response.status_code == 201, response.content
    return Done(response, actor, also={"dis.publish": 0})


def agent_published(w: World) -> Done:
    w.publish(FINANCE)
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/agents", {"content": TRIAGE})
    assert response.status_code == 201, response.content
    return Done(response, actor)


def agent_rolled_back(w: World) -> Done:
    w.publish(FINANCE, TRIAGE, TRIAGE.replace("instructions: ", "instructions: Be brief. ", 1))
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/agents/invoice-triage/rollback", {"version": 1})
    assert response.status_code == 201, response.content
    return Done(response, actor, also={"agent.publish": 0})


def agent_deployed(w: World) -> Done:
    w.publish(FINANCE, TRIAGE)
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/agents/invoice-triage/deploy", {"version": 1})
    assert response.status_code == 201, response.content
    return Done(response, actor)


def agent_migrated(w: World) -> Done:
    w.deploy_triage()
    w.publish(FINANCE_V2)
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/agents/invoice-triage/migrate")
    assert response.status_code == 200 and response.json()["changed"], response.content
    # A migration is the re-pinned manifest's publish, then its deployment (reason "migrate").
    return Done(response, actor, also={"agent.publish": 1}, data={"reason": "migrate", "domain_version": 2})


def run_started(w: World) -> Done:
    w.deploy_triage()
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/runs", {"agent": "invoice-triage", "input": SMALL})
    assert response.status_code == 201, response.content
    return Done(response, actor)


def run_cancelled(w: World) -> Done:
    agent = w.deploy_triage()
    with schema_context("acme"):
        run = run_start(actor=w.owner(), agent=agent, input=SMALL)
    client, actor = w.token()
    w.watch()
    response = post_json(client, f"/api/v1/runs/{run.pk}/cancel")
    assert response.status_code == 200, response.content
    return Done(response, actor)


def run_approved(w: World) -> Done:
    run = w.waiting_run()
    client, actor = w.token()
    w.watch()
    response = post_json(client, f"/api/v1/runs/{run.pk}/approve")
    assert response.status_code == 200, response.content
    return Done(response, actor)


def run_rejected_in_the_console(w: World) -> Done:
    run = w.waiting_run()
    w.watch()
    response = w.console().post(f"/runs/{run.pk}/decide/", {"decision": "reject", "comment": "no", "step": 2})
    assert response.status_code == 302, response.content
    return Done(response, user_id("owner@acme.test", w.acme))


def provider_credential_set(w: World) -> Done:
    w.provider_key()
    client, actor = w.token()
    w.watch()
    response = post_json(client, "/api/v1/providers/openai", {"api_key": "sk-test-0123456789abcdef"}, method="put")
    assert response.status_code == 201, response.content
    return Done(response, actor)


def provider_credential_deleted(w: World) -> Done:
    w.provider_key()
    with schema_context("acme"):
        credential_set(actor=w.owner(), provider="openai", api_key="sk-test-0123456789abcdef")
    client, actor = w.token()
    w.watch()
    response = client.delete("/api/v1/providers/openai")
    assert response.status_code == 204, response.content
    return Done(response, actor)


def tenant_provisioned(w: World) -> Done:
    w.watch()
    response = client_for(None, "operator@platform.test").post(
        "/tenants/new/", {"slug": "audited", "name": "Audited", "plan": "team", "owner_email": "boss@audited.test"}
    )
    assert response.status_code == 200
    # One event in the platform's chain, one in the new tenant's own.
    return Done(response, user_id("operator@platform.test", None), chain="public", also={"@audited": 1})


def tenant_suspended(w: World) -> Done:
    w.watch()
    response = client_for(None, "operator@platform.test").post("/tenants/acme/suspend/")
    assert response.status_code == 302
    return Done(response, user_id("operator@platform.test", None), chain="public")


def tenant_resumed(w: World) -> Done:
    tenant_suspend(tenant=w.acme, actor="test")
    w.watch()
    response = client_for(None, "operator@platform.test").post("/tenants/acme/resume/")
    assert response.status_code == 302
    return Done(response, user_id("operator@platform.test", None), chain="public")


def tenant_http_networks_set(w: World) -> Done:
    w.watch()
    call_command("tenant_http_networks", "acme", "--allow", "10.1.0.0/16", stdout=StringIO())
    return Done(NO_REQUEST, "service:cli:tenant_http_networks", chain="public")


def git_fetched(w: World) -> Done:
    w.publish(FINANCE)
    with schema_context("acme"):
        head = history_build().refs[b"refs/heads/main"]
    plaintext = issue(w.acme, role="viewer", scopes=("read",))

    def pkt(line: bytes) -> bytes:
        return f"{len(line) + 4:04x}".encode() + line

    body = pkt(b"want " + head + b" side-band-64k thin-pack ofs-delta\n") + b"0000" + pkt(b"done\n")
    w.watch()
    response = client_for(w.acme).post(
        "/git/foundry.git/git-upload-pack",
        body,
        content_type="application/x-git-upload-pack-request",
        HTTP_AUTHORIZATION=f"Bearer {plaintext}",
    )
    assert response.status_code == 200, response.content
    return Done(response, f"token:{plaintext[3:15]}")


def operator_created(w: World) -> Done:
    w.watch()
    call_command(
        "create_operator",
        "second-operator@platform.test",
        "--password",
        "an-unrelated-long-passphrase-7",
        stdout=StringIO(),
    )
    return Done(NO_REQUEST, "service:cli:create_operator", chain="public")


def access_denied_in_the_console(w: World) -> Done:
    w.watch()
    response = w.console("viewer@acme.test").get("/settings/tokens/")
    assert response.status_code == 403
    return Done(response, user_id("viewer@acme.test", w.acme), data={"method": "GET"})


def access_denied_over_the_api(w: World) -> Done:
    client, actor = w.token(role="viewer", scopes=("read",))
    w.watch()
    response = post_json(client, "/api/v1/members", {"email": "x@acme.test", "role": Role.VIEWER})
    assert response.status_code == 403
    return Done(response, actor, data={"method": "POST"})


def revoked_token_rejected(w: World) -> Done:
    plaintext = issue(w.acme)
    with schema_context("acme"):
        from apps.tokens.services import token_revoke

        token_revoke(actor="test", token=ApiToken.objects.get(prefix=plaintext[3:15]))
    w.watch()
    response = api(w.acme, plaintext).get("/api/v1/members")
    assert response.status_code == 401
    return Done(response, "anonymous", data={"reason": "revoked"})


ACTIONS: list[tuple[str, Callable[[World], Done], str, str]] = [
    # (test id, driver, action, outcome)
    ("sign-in", sign_in, "auth.login", "success"),
    ("operator-sign-in", operator_sign_in, "auth.login", "success"),
    ("sign-in-failure", sign_in_failure, "auth.login.failed", "failure"),
    ("sign-in-throttled", sign_in_throttled, "auth.login.throttled", "denied"),
    ("sign-out", sign_out, "auth.logout", "success"),
    ("invitation-issued", invitation_issued, "member.invite_issued", "success"),
    ("invitation-accepted", invitation_accepted, "member.invite_accepted", "success"),
    ("member-added", member_added, "member.added", "success"),
    ("member-added-api", member_added_over_the_api, "member.added", "success"),
    ("member-role-changed", member_role_changed, "member.role_changed", "success"),
    ("member-removed", member_removed, "member.removed", "success"),
    ("token-issued-api", token_issued, "token.issued", "success"),
    ("token-issued-console", token_issued_in_the_console, "token.issued", "success"),
    ("token-revoked-console", token_revoked, "token.revoked", "success"),
    ("token-revoked-api", token_revoked_over_the_api, "token.revoked", "success"),
    ("token-revoked-command", token_revoked_by_command, "token.revoked", "success"),
    ("dis-published", dis_published, "dis.publish", "success"),
    ("dis-rolled-back", dis_rolled_back, "dis.rollback", "success"),
    ("agent-published", agent_published, "agent.publish", "success"),
    ("agent-rolled-back", agent_rolled_back, "agent.rollback", "success"),
    ("agent-deployed", agent_deployed, "agent.deploy", "success"),
    ("agent-migrated", agent_migrated, "agent.deploy", "success"),
    ("run-started", run_started, "run.start", "success"),
    ("run-cancelled", run_cancelled, "run.cancel", "success"),
    ("run-approved", run_approved, "run.approve", "success"),
    ("run-rejected-console", run_rejected_in_the_console, "run.reject", "success"),
    ("provider-credential-set", provider_credential_set, "provider.credential.set", "success"),
    ("provider-credential-deleted", provider_credential_deleted, "provider.credential.delete", "success"),
    ("tenant-provisioned", tenant_provisioned, "tenant.provisioned", "success"),
    ("tenant-suspended", tenant_suspended, "tenant.suspended", "success"),
    ("tenant-resumed", tenant_resumed, "tenant.resumed", "success"),
    ("tenant-http-networks", tenant_http_networks_set, "tenant.http_networks.set", "success"),
    ("git-fetch", git_fetched, "git.fetch", "success"),
    ("operator-created", operator_created, "operator.created", "success"),
    ("access-denied-console", access_denied_in_the_console, "access.denied", "denied"),
    ("access-denied-api", access_denied_over_the_api, "access.denied", "denied"),
    ("token-rejected", revoked_token_rejected, "auth.token.rejected", "failure"),
]


@pytest.mark.parametrize(("driver", "action", "outcome"), [a[1:] for a in ACTIONS], ids=[a[0] for a in ACTIONS])
def test_each_security_action_records_exactly_one_event(acme, settings, driver, action, outcome):
    world = World(acme=acme, settings=settings)
    done = driver(world)
    assert world.before is not None, "the driver did not say when its action began"
    after = {schema: audit_events(schema) for schema in WATCHED}
    new = {schema: after[schema][len(world.before[schema]) :] for schema in WATCHED}

    (event,) = [e for e in new[done.chain] if e.action == action]
    assert (event.actor_id, event.actor_type) == (done.actor, done.actor.split(":", 1)[0])
    assert event.outcome == outcome
    assert {key: event.data.get(key) for key in done.data} == done.data
    if done.response is NO_REQUEST:
        assert (event.ip, event.request_id) == ("", "")
    else:
        assert event.ip == "127.0.0.1"
        assert event.request_id and event.request_id == done.response["X-Request-ID"]
    for other, count in done.also.items():
        if other.startswith("@"):  # the same action in another tenant's chain
            events = [e for e in audit_events(other[1:]) if e.action == action]
            assert [(e.actor_id, e.request_id) for e in events] == [(event.actor_id, event.request_id)] * count
        else:
            assert len([e for e in new[done.chain] if e.action == other]) == count, other
    # Nothing of it leaked into the other chain watched here.
    elsewhere = "public" if done.chain == "acme" else "acme"
    assert not [e for e in new[elsewhere] if e.action == action]

"""A provider credential deleted (or replaced) while a run is under way: no model call goes out
with the old key after it (found by a review: the attempt kept the key it decrypted at its start
for every later call, for up to the manifest's wall time). Another workspace's change touches
no run of this one."""

from collections.abc import Callable

from django_tenants.utils import schema_context

from apps.providers.services import credential_delete, credential_get, credential_set
from apps.runs.engine import Attempt
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply, openai_completion
from tests.runs.conftest import advance


def _run_changing_after_first_call(acme, openai_agent, monkeypatch, change: Callable[[], None]):
    """A two-call run of acme's (a tool call, then an answer) whose worker, once the first model
    call is recorded, sees `change` made; the run as the attempt leaves it, and the model server."""
    server, agent = openai_agent
    server.queue(
        Reply(body=openai_completion(tool_calls=[("call_a", "find_invoices", {"question": "rules?"})])),
        Reply(body=openai_completion("Answered.")),
    )
    record = Attempt._record

    def record_then_change(self, step, payload):
        record(self, step, payload)
        if step["index"] == 1:
            change()

    monkeypatch.setattr(Attempt, "_record", record_then_change)
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="What rules apply?")
    run = advance(run, "acme")
    monkeypatch.setattr(Attempt, "_record", record)
    return run, server


def test_a_run_stops_using_a_provider_key_once_an_admin_deleted_it(acme, openai_agent, monkeypatch):
    """An admin deletes a (say, leaked) OpenAI key while a run is running: the delete signals the
    run's worker, which reads the credential before its next step; no further model call is made
    with the key, and the run ends `failed` with reason `provider_not_configured` (as a run that
    starts after the deletion does)."""
    owner = tenant_user(acme, "owner@acme.test")
    run, server = _run_changing_after_first_call(
        acme, openai_agent, monkeypatch, lambda: credential_delete(actor=owner, provider="openai")
    )
    calls_after_delete = server.requests[1:]
    assert not calls_after_delete, (
        f"{len(calls_after_delete)} model call(s) made with the deleted key "
        f"({calls_after_delete[0].headers.get('authorization')!r}); run ended {run.status}: {run.output!r}"
    )
    assert (run.status, run.reason) == (Run.Status.FAILED, "provider_not_configured")


def test_a_run_goes_on_with_the_key_an_admin_replaced_it_with(acme, openai_agent, monkeypatch):
    """A credential replaced while a run is under way (a leaked key rotated): the run's next
    model call goes out with the new key, never the old one; the run goes on in a new attempt
    (from its checkpoint) and succeeds."""
    owner = tenant_user(acme, "owner@acme.test")

    def replace():
        with schema_context("acme"):
            base_url = credential_get("openai").base_url
            credential_set(actor=owner, provider="openai", api_key="sk-test-rotated-654321", base_url=base_url)

    run, server = _run_changing_after_first_call(acme, openai_agent, monkeypatch, replace)
    assert run.status == Run.Status.QUEUED  # back in the queue: its next attempt reads the credential anew
    run = advance(run, "acme")
    assert run.status == Run.Status.SUCCEEDED, (run.status, run.reason)
    keys = [request.headers.get("authorization") for request in server.requests]
    assert keys == ["Bearer sk-test-abcdef123456", "Bearer sk-test-rotated-654321"], keys


def test_another_workspaces_credential_deleted_mid_run_changes_nothing_here(acme, globex, openai_agent, monkeypatch):
    """globex deletes its own OpenAI credential while acme's run is under way: acme's run is not
    signalled, not restarted, not failed; it finishes with acme's key."""
    other = tenant_user(globex, "owner@globex.test")
    with schema_context(globex.schema_name):
        credential_set(actor=other, provider="openai", api_key="sk-test-globex-0123456789")

    def delete_globex():
        with schema_context(globex.schema_name):
            credential_delete(actor=other, provider="openai")

    run, server = _run_changing_after_first_call(acme, openai_agent, monkeypatch, delete_globex)
    assert (run.status, run.output) == (Run.Status.SUCCEEDED, "Answered.")
    keys = [request.headers.get("authorization") for request in server.requests]
    assert keys == ["Bearer sk-test-abcdef123456"] * 2, keys

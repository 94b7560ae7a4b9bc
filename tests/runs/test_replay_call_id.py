"""A tool call recorded as completed is replayed, not made again, after a lost worker, also when
the endpoint's id for it held a NUL. The provider cleaned ids of lone surrogates only, so the
checkpoint kept the NUL while the step's record (storable()) had U+FFFD: recovery never matched
them, made the call again, and the second record's IntegrityError was taken for a lost lock,
leaving the run `running`. Ids are now cleaned as records store them (provider_http.tool_call_id).
Found by a review."""

import ipaddress

from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, advance_dying_after_record, agent_yaml, deploy, http_tool


def test_a_recorded_tool_call_whose_id_holds_a_nul_is_replayed_not_made_again(
    acme, settings, ledger, loopback_allowed, monkeypatch
):
    """Step 2 (an http POST) is recorded, then the worker dies before a checkpoint holds it; the
    next worker replays it: one POST, and the run succeeds."""
    from apps.providers.services import credential_set
    from tests.providers.fake_models import FakeModelServer, Reply, openai_completion

    settings.FOUNDRY_PROVIDER_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    model = FakeModelServer()
    try:
        owner = tenant_user(acme, "owner@acme.test")
        with schema_context("acme"):
            credential_set(
                actor=owner, provider="openai", api_key="sk-test-abcdef123456", base_url=f"{model.origin}/v1"
            )
        agent = deploy(acme, FINANCE, agent_yaml(provider="openai", tools=http_tool(ledger.port)))
        model.queue(Reply(body=openai_completion(tool_calls=[("call_\x00a", "ledger", {"id": "1"})])))
        model.queue(Reply(body=openai_completion("done")))
        model.queue(Reply(body=openai_completion("done")))
        with schema_context("acme"):
            run = run_start(actor=owner, agent=agent, input="Book entry 1.")

        advance_dying_after_record(run, monkeypatch, 2)
        assert sum(ledger.requests.values()) == 1

        run = advance(run, "acme")
    finally:
        model.close()
    with schema_context("acme"):
        steps = list(Step.objects.filter(run=run).values_list("index", "node", "status"))
        run = Run.objects.get(pk=run.pk)
    assert sum(ledger.requests.values()) == 1, (
        f"the recorded POST was made {sum(ledger.requests.values())} times; run {run.status}, steps {steps}"
    )
    assert run.status == "succeeded", (run.status, run.reason, run.message, steps)

"""The run's time limit (`limits.timeout_seconds`) ends a run as `failed` / `timeout`
(docs/runs.md, "Limits and cancellation"), also when it is a model call that runs out of it: the
call is given only the time the run has left. A model endpoint slower than the connection's own
timeout, with run time to spare, is the model's failure (`model_failed`)."""

import pytest
from django_tenants.utils import schema_context

from apps.runs.models import Step
from tests.providers.fake_models import Reply, openai_completion
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy
from tests.runs.test_engine import start


@pytest.fixture
def slow_model(acme, openai_agent):
    """A local OpenAI-compatible server with acme's credentials for it (its own timeout: the
    default, far more than the run's), and an agent using it whose run may work 1 s."""
    server, _ = openai_agent
    return server, deploy(acme, FINANCE, agent_yaml(provider="openai", limits="  limits: {timeout_seconds: 1}\n"))


def test_a_model_call_cut_off_by_the_runs_time_limit_ends_the_run_with_reason_timeout(acme, slow_model):
    """The endpoint answers after 3 s, the run may work 1 s: the call is cut at 1 s
    (`provider_timeout` on the step, its duration about the limit) and the run ends `timeout`."""
    server, agent = slow_model
    server.queue(Reply(body=openai_completion("Too late."), delay=3))
    run = advance(start(acme, agent, "Hello?"), "acme")
    with schema_context("acme"):
        step = Step.objects.get(run=run, index=1)
    # The call was cut at the run's limit (1 s), not at the connection's own timeout.
    assert step.error == "provider_timeout" and 1000 <= step.duration_ms < 2500
    assert (run.status, run.reason) == ("failed", "timeout"), run.message


def test_a_model_call_cut_off_by_the_connections_own_timeout_is_the_models_failure(acme, slow_model, settings):
    server, agent = slow_model
    settings.FOUNDRY_PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.FOUNDRY_PROVIDER_MAX_RETRIES = 0
    server.queue(Reply(body=openai_completion("Too late."), delay=3))
    run = advance(start(acme, agent, "Hello?"), "acme")
    with schema_context("acme"):
        step = Step.objects.get(run=run, index=1)
    assert step.error == "provider_timeout" and step.duration_ms < 1000
    assert (run.status, run.reason) == ("failed", "model_failed"), run.message

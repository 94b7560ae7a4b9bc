"""foundry/runtime/provider_openai.py: a `finish_reason` of any JSON type is read as text or none."""

import pytest

from tests.providers.fake_models import Reply, openai_completion
from tests.providers.test_hostile_answers import _agent, _run


@pytest.mark.parametrize("finish_reason", [["stop"], {"type": "stop"}])
def test_an_unhashable_finish_reason_does_not_end_the_run_on_an_internal_error(acme, keys, server, finish_reason):
    """Whatever a model endpoint answers ends the run with a coded reason, never `internal_error`
    (tests/providers/test_hostile_answers.py): a `finish_reason` that is a list or an object is no
    reason (as `text_or_none` reads it). The check for an answer that says nothing raised
    TypeError (unhashable) on it, outside the provider's error handling."""
    body = openai_completion("ok")
    body["choices"][0]["finish_reason"] = finish_reason
    server.queue(Reply(body=body))
    run = _run(acme, _agent(acme, server.origin + "/v1"))
    assert run.reason != "internal_error", (run.status, run.reason, run.message)

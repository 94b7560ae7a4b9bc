"""JSON log lines must not carry credentials (docs/observability.md "Logs"; PRODUCT.md
"Observability"): an OIDC authorization code, an API token or any other secret a client put in
a URL's query string is copied into every `django.request` line that a 4xx/5xx answer makes,
through the `request` field (`<WSGIRequest: GET '/path?query'>`) that Django passes as `extra`
and python-json-logger serialises."""

import json

import pytest

from tests.conftest import client_for
from tests.foundry.test_logs import json_log_lines, of_logger
from tests.identity.conftest import configure, idp, loopback_allowed  # noqa: F401 - fixtures
from tests.providers.conftest import encryption_key  # noqa: F401 - fixture

CODE = "oidc-authorization-code-7c1f9e2d4b6a8c0e"


@pytest.mark.usefixtures("loopback_allowed", "encryption_key")
def test_a_refused_sso_callback_does_not_log_the_authorization_code(acme, idp):  # noqa: F811
    """A replayed / stale IdP answer (back button, second tab) is refused with 403 state_invalid;
    the log line that refusal makes must not hold the one-time code the IdP issued."""
    configure(acme, idp)
    client = client_for(acme)
    with json_log_lines() as lines:
        response = client.get(f"/sso/callback/?code={CODE}&state=stale-state&iss={idp.issuer}")
    assert response.status_code == 403
    assert of_logger(lines, "django.request"), "the refusal is logged"
    leaked = [line for line in lines if CODE in json.dumps(line)]
    assert not leaked, f"the OIDC code reached the logs: {leaked}"


def test_a_query_string_token_is_not_copied_into_error_log_lines(acme):
    """Whatever a client puts in the query string (here a bearer token pasted as ?access_token=,
    which some clients do) must not be written to the log by an error answer."""
    secret = "fnd_live_0123456789abcdef0123456789abcdef"
    with json_log_lines() as lines:
        response = client_for(acme).get(f"/api/v1/runs?access_token={secret}")
    assert response.status_code == 401
    assert of_logger(lines, "django.request")
    assert not [line for line in lines if secret in json.dumps(line)]


# --- httpx's own INFO line: "HTTP Request: POST <full URL> ..." ----------------------------------
# settings.LOGGING sets the root level to INFO and quiets only django.db.backends and dulwich, so
# httpx (used for webhook sinks, `http` tools and model providers) logs every URL it calls.


@pytest.mark.usefixtures("loopback_allowed")
def test_a_webhook_sink_s_url_token_is_not_logged_on_delivery(acme, tmp_path):
    """The sink code itself treats a webhook URL's path and query as secret (apps/audit/delivery.py:
    "never the secret, nor a URL's path (it may hold a token)"), like Slack / Splunk HEC / Teams
    webhook URLs; a delivery must not write it to the log."""
    from apps.audit.delivery import SinkFields, audit_sink_set, sink_deliver
    from tests.audit.test_delivery import WebhookReceiver, self_signed

    token = "T0A1B2C3D/B4E5F6G7H/Xq9ZsecretWebhookPathToken"
    pem, context = self_signed(tmp_path)
    hook = WebhookReceiver(context)
    url = hook.url.replace("/ingest?source=foundry", f"/services/{token}?key=hec-0f1e2d3c4b5a")
    try:
        fields = SinkFields(kind="webhook", url=url, secret="s3cret-s3cret-s3cret", ca_certificate=pem)
        sink = audit_sink_set(tenant=acme, name="hook", fields=fields, actor="test")
        with json_log_lines() as lines:
            result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    finally:
        hook.stop()
    assert result.status == "delivered"
    leaked = [line for line in lines if token in json.dumps(line) or "hec-0f1e2d3c4b5a" in json.dumps(line)]
    assert not leaked, f"the webhook URL's secret parts reached the logs: {leaked}"


def test_http_tool_arguments_are_not_logged_without_trace_content(acme):
    """A tool call's arguments are the model's output; with trace_content off (the default) they
    must not be written to the worker's logs either."""
    from tests.runtime.conftest import Server, customer_lookup

    assert acme.trace_content is False
    private = "Jane Q. Customer, IBAN DE89370400440532013000"
    server = Server()
    try:
        toolbox = customer_lookup(server)
        with json_log_lines() as lines:
            result = json.loads(toolbox.run(toolbox.get("lookup"), {"customer": private}, timeout=5))
    finally:
        server.close()
    assert result["status"] == 200
    leaked = [line for line in lines if "DE89370400440532013000" in json.dumps(line)]
    assert not leaked, f"the model's tool arguments reached the logs: {leaked}"

"""With no FOUNDRY_METRICS_TOKEN there is no /metrics, whatever the method (404, never a 405 that
would show the endpoint); with one, it answers GET and HEAD only."""

from django.test import Client


def test_metrics_without_a_token_is_404_for_every_method(db, settings):
    settings.FOUNDRY_METRICS_TOKEN = ""
    client = Client(HTTP_HOST="localhost")
    assert client.get("/metrics").status_code == 404
    response = client.post("/metrics")
    assert response.status_code == 404, (response.status_code, response.get("Allow"))

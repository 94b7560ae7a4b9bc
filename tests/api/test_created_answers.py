"""What a request created, said the HTTP way (RFC 9110): 201 with the new resource's path in
`Location` (§15.3.2: without it a client takes the collection it posted to for the created
resource), and a `PUT` that creates answering 201, one that replaces 200 (§9.3.4). Before, no
answer carried `Location`, and a creating `PUT` of a provider credential or an audit sink
answered 200 like a replace: a client could not tell it had created one rather than overwritten
what someone else set. Each `Location` leads to the resource on its own workspace's host, and
nowhere on another's."""

import json

from apps.tenants.services import tenant_http_networks_set
from tests.api.conftest import api, issue
from tests.providers.conftest import KEY
from tests.runs.conftest import FINANCE, TRIAGE, deploy


def _followed(tenant, token, response):
    location = response.get("Location", "")
    assert location.startswith("/api/v1/"), (response.status_code, location)
    return location, api(tenant, token).get(location)


def test_a_token_member_run_and_version_created_each_say_where_they_are(acme):
    deploy(acme, FINANCE, TRIAGE)
    token = issue(acme, role="owner")
    client = api(acme, token)
    json_post = lambda path, body, **headers: client.post(path, json.dumps(body), "application/json", **headers)  # noqa: E731

    issued = json_post("/api/v1/tokens", {"name": "ci", "role": "viewer", "scopes": ["read"]})
    assert issued.status_code == 201
    location, got = _followed(acme, token, issued)
    assert location == f"/api/v1/tokens/{issued.json()['metadata']['id']}" and got.json()["name"] == "ci"

    added = json_post("/api/v1/members", {"email": "new@acme.test", "role": "viewer"})
    assert added.status_code == 201
    location, got = _followed(acme, token, added)
    assert location == f"/api/v1/members/{added.json()['member']['id']}" and got.json()["email"] == "new@acme.test"

    started = json_post("/api/v1/runs", {"agent": "invoice-triage", "input": "Triage INV-1."})
    assert started.status_code == 201
    location, got = _followed(acme, token, started)
    assert location == f"/api/v1/runs/{started.json()['id']}" and got.json()["id"] == started.json()["id"]

    source = TRIAGE.replace("Triage", "Triage carefully", 1)
    assert source != TRIAGE
    published = json_post("/api/v1/agents", {"content": source, "filename": "invoice-triage.yaml"})
    assert published.status_code == 201, published.content[:300]
    number = published.json()["version"]["number"]
    location, got = _followed(acme, token, published)
    assert location == f"/api/v1/agents/invoice-triage/versions/{number}" and got.json()["number"] == number
    again = json_post("/api/v1/agents", {"content": source, "filename": "invoice-triage.yaml"})
    assert again.status_code == 200 and "Location" not in again  # nothing created

    # A retry with the same Idempotency-Key is answered as the first was, Location included.
    body = {"name": "retry", "role": "viewer", "scopes": ["read"]}
    first = json_post("/api/v1/tokens", body, HTTP_IDEMPOTENCY_KEY="k-location-1")
    replay = json_post("/api/v1/tokens", body, HTTP_IDEMPOTENCY_KEY="k-location-1")
    assert replay.status_code == 201 and replay["Location"] == first["Location"]


def test_a_location_does_not_lead_into_another_workspace(acme, globex):
    client = api(acme, issue(acme, role="owner"))
    issued = client.post("/api/v1/tokens", {"name": "ci", "role": "viewer", "scopes": ["read"]}, "application/json")
    location = issued["Location"]
    assert api(acme, issue(acme)).get(location).status_code == 200
    assert api(globex, issue(globex)).get(location).status_code == 404  # their host: not acme's token
    assert api(acme, issue(globex)).get(location).status_code == 401  # acme's host, globex's token


def test_a_put_that_creates_a_provider_credential_answers_201_and_one_that_replaces_200(acme, globex):
    client = api(acme, issue(acme, role="admin"))
    put = lambda body: client.put("/api/v1/providers/openai", json.dumps(body), content_type="application/json")  # noqa: E731
    assert put({"api_key": KEY}).status_code == 201
    assert put({"api_key": KEY}).status_code == 200  # the same again: nothing changes
    assert put({"api_key": KEY[:-4] + "9999"}).status_code == 200
    # globex's first credential is its own creation: acme's does not make it a replace.
    theirs = api(globex, issue(globex, role="admin"))
    assert theirs.put("/api/v1/providers/openai", json.dumps({"api_key": KEY}), "application/json").status_code == 201


def test_a_put_that_creates_an_audit_sink_answers_201_and_one_that_replaces_200(acme, settings):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    tenant_http_networks_set(tenant=acme, networks=["10.20.0.0/16"], actor="cli:tenant_http_networks")
    client = api(acme, issue(acme))
    body = {"kind": "syslog", "host": "10.20.0.5", "port": 6514, "tls": False}
    assert client.put("/api/v1/audit/sinks/siem", body, content_type="application/json").status_code == 201
    assert client.put("/api/v1/audit/sinks/siem", body, content_type="application/json").status_code == 200

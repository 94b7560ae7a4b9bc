"""Validating a small document of many bad key names costs time and memory in proportion to it."""

import json

from foundry.manifests.validation import MAX_PROBLEMS
from tests.api.conftest import api, issue


def post(client, path: str, body: dict):
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


def test_validating_a_small_document_with_many_bad_label_names_costs_quadratic_memory(acme):
    """A 21 KB Domain whose `metadata.labels` has 2,000 keys that break the label-name pattern made
    POST /api/v1/validate (any viewer with a read token) allocate about 1 GB and take seconds:
    jsonschema-rs gave one error per bad key, each carrying a copy of the whole mapping (4,000 keys:
    ~4 GB, the worker killed well inside the 1 MiB limit). Key names are checked one by one
    (validation.py `_names_problems`): each bad one found, at once (the first MAX_PROBLEMS listed)."""
    import resource
    import time

    labels = ", ".join(f"A{i}: x" for i in range(2000))
    source = (
        "apiVersion: foundry/v1\nkind: Domain\nmetadata:\n  name: bad-labels\n"
        f"  labels: {{{labels}}}\nspec:\n  entities:\n    a: {{fields: {{b: {{type: string}}}}}}\n"
    )
    assert len(source.encode()) < 32 * 1024
    viewer = api(acme, issue(acme, role="viewer", scopes=("read",)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.monotonic()
    response = post(viewer, "validate", {"content": source})
    elapsed = time.monotonic() - started
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert response.status_code == 200 and response.json()["valid"] is False
    named = [p for p in response.json()["problems"] if p["code"] == "schema_property_name"]
    problems = response.json()["problems"]
    assert len(problems) == MAX_PROBLEMS + 1 and named[0]["path"].startswith("/metadata/labels/A")
    assert problems[-1]["code"] == "too_many_problems" and "more problems from here on" in problems[-1]["message"]
    assert grown_mib < 200, f"validating a {len(source)} byte document grew the process by {grown_mib:.0f} MiB"
    assert elapsed < 1.0, f"validating a {len(source)} byte document took {elapsed:.1f} s"

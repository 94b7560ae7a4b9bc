"""A "billion laughs" made of long text: few values, but each alias repeats a 99,000-character
scalar, so a 120 KB document would expand to ~100 MB of content. The loader counts the text an
expansion makes as well as its values (foundry/manifests/loader.py `_measure`), so such a
document is refused (`yaml_alias_expansion`) before anything is expanded, validated or stored
(docs/manifests.md)."""

import json

from django_tenants.utils import schema_context

from apps.catalog.models import Version
from foundry.manifests import canonical, validate
from tests.api.conftest import api, issue
from tests.catalog.conftest import example

LONG = "x" * 99_000


def _agent(aliases: int) -> str:
    return (
        "apiVersion: foundry/v1\n"
        "kind: Agent\n"
        "metadata: {name: bomb, project: p}\n"
        "spec:\n"
        "  domain: {name: finance, version: 1}\n"
        "  model: {provider: scripted, name: scripted-1}\n"
        "  instructions: hi\n"
        "  tests:\n"
        "    - name: t\n"
        "      input: go\n"
        "      script:\n"
        f"        - respond: &s {LONG}\n" + "        - respond: *s\n" * (aliases - 1)
    )


def test_alias_expansion_of_long_text_is_refused_by_the_loader():
    source = _agent(1000)
    assert len(source.encode()) < 130_000  # a small document...
    result = validate(source, "bomb.yaml")
    if result.ok:
        expanded = len(canonical(result.data))
        raise AssertionError(f"{len(source)} bytes of YAML expanded to {expanded} bytes and validated")
    assert [p.code for p in result.problems] == ["yaml_alias_expansion"], result.problems
    assert result.problems[0].line is not None


def test_alias_expanded_manifest_is_not_published(acme):
    client = api(acme, issue(acme, role="developer", scopes=("read", "write")))
    post = lambda path, body: client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")  # noqa: E731
    assert post("domains", {"content": example("domains/finance.yaml")}).status_code == 201
    response = post("agents", {"content": _agent(300)})  # 36 KB of YAML, ~30 MB of content
    with schema_context(acme.schema_name):
        stored = Version.objects.filter(document__name="bomb").first()
        size = len(canonical(stored.content)) if stored else 0
    assert response.status_code == 422, f"published: {response.status_code}, content of {size} bytes stored"
    assert stored is None

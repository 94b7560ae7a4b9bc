"""Values a filter takes whole: a bare value with dots keeps its wildcards (`gpt-4.*`,
`*@acme.test`), and a time written past the microsecond is compared as the instant it is."""

from datetime import UTC, datetime

from django_tenants.utils import schema_context

from foundry.filtering import FilterSpec, StringField, TimestampField
from tests.api.conftest import api, issue
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import make_run

# --- a wildcard in a bare value with dots -------------------------------------------------------


def test_a_bare_dotted_wildcard_value_matches_like_its_quoted_form_over_the_api(acme):
    """docs/api/filtering.md: values are bare words or quoted strings, and in string equality
    `*` is a wildcard: `email = *@acme.test` selects what `email = "*@acme.test"` selects."""
    client = api(acme, issue(acme, role="owner"))
    quoted = client.get("/api/v1/members", {"filter": 'email = "*@acme.test"'}).json()["members"]
    assert quoted, "fixture: acme has members @acme.test"
    bare = client.get("/api/v1/members", {"filter": "email = *@acme.test"})
    assert bare.status_code == 200
    assert [m["email"] for m in bare.json()["members"]] == [m["email"] for m in quoted]


def test_a_bare_dotted_wildcard_on_runs_model(acme):
    agent = deploy(acme, FINANCE, TRIAGE)
    run = make_run(acme, agent, model="gpt-4.1-mini")
    client = api(acme, issue(acme, role="owner"))
    for text in ("model = gpt-4.*", "model = gpt-4.1-*", 'model = "gpt-4.*"'):
        body = client.get("/api/v1/runs", {"filter": text}).json()
        assert [r["id"] for r in body["runs"]] == [str(run.pk)], text


def test_the_python_predicate_keeps_the_wildcard_too():
    """The same compile decides DIS rules over plain dicts: a rule `email = *@rival.example`
    fires (what it guards, an approval, is asked for)."""
    spec = FilterSpec({"email": StringField()})
    assert spec.compile('email = "*@rival.example"').matches({"email": "ceo@rival.example"})
    assert spec.compile("email = *@rival.example").matches({"email": "ceo@rival.example"})


# --- a time between two microseconds -------------------------------------------------------------


def test_a_timestamp_with_nanoseconds_is_compared_not_truncated(acme):
    """`created_at < "…00.0000001Z"` includes a row created at exactly …00.000000Z (it is
    earlier), and `created_at = "…00.0000001Z"` does not match it (another instant)."""
    agent = deploy(acme, FINANCE, TRIAGE)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    run = make_run(acme, agent, created_at=at)
    with schema_context(acme.schema_name):
        run.refresh_from_db()
        assert run.created_at == at
    client = api(acme, issue(acme, role="owner"))
    before = client.get("/api/v1/runs", {"filter": 'created_at < "2026-01-01T00:00:00.0000001Z"'}).json()
    assert [r["id"] for r in before["runs"]] == [str(run.pk)]
    equal = client.get("/api/v1/runs", {"filter": 'created_at = "2026-01-01T00:00:00.0000001Z"'}).json()
    assert equal["runs"] == []


def test_the_predicate_agrees_for_nanoseconds():
    spec = FilterSpec({"t": TimestampField()})
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert spec.compile('t < "2026-01-01T00:00:00.0000001Z"').matches({"t": at})
    assert spec.compile('t >= "2026-01-01T00:00:00.0000001Z"').matches({"t": at}) is False
    assert spec.compile('t <= "2026-01-01T00:00:00.0000001Z"').matches({"t": at})
    assert spec.compile('t > "2026-01-01T00:00:00.0000001Z"').matches({"t": at}) is False
    assert spec.compile('t = "2026-01-01T00:00:00.0000001Z"').matches({"t": at}) is False
    assert spec.compile('t != "2026-01-01T00:00:00.0000001Z"').matches({"t": at})
    assert spec.compile('t = "2026-01-01T00:00:00.000000000Z"').matches({"t": at})  # zeros: the same instant

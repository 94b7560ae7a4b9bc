"""Values a filter takes whole: a bare value with dots keeps its wildcards (`gpt-4.*`,
`*@acme.test`), and a time written past the microsecond is compared as the instant it is."""

from datetime import UTC, datetime

from django_tenants.utils import schema_context

from apps.runs.services import run_start
from foundry.filtering import FilterSpec, StringField, TimestampField
from tests.api.conftest import api, issue
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy
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


LAST = '"9999-12-31T23:59:59.9999991Z"'  # past the last microsecond a datetime holds


def test_a_time_past_the_last_microsecond_compares_without_overflowing():
    """Below it is every time there is, at or above it none: the comparison moved one microsecond
    past datetime.max (OverflowError, a 500 on every list and a run ended `internal_error` when
    a model wrote it in a dis_query filter)."""
    spec = FilterSpec({"t": TimestampField()})
    last = datetime.max.replace(tzinfo=UTC)
    for at in (datetime(2026, 1, 1, tzinfo=UTC), last):
        assert spec.compile(f"t < {LAST}").matches({"t": at})
        assert spec.compile(f"t <= {LAST}").matches({"t": at})
        assert spec.compile(f"t >= {LAST}").matches({"t": at}) is False
        assert spec.compile(f"t > {LAST}").matches({"t": at}) is False


def test_a_time_past_the_last_microsecond_on_the_api(acme):
    agent = deploy(acme, FINANCE, TRIAGE)
    run = make_run(acme, agent)
    client = api(acme, issue(acme, role="owner"))
    for path in ("/api/v1/runs", f"/api/v1/runs/{run.pk}/steps", f"/api/v1/runs/{run.pk}/approvals"):
        field = "requested_at" if path.endswith("approvals") else "created_at"
        for op in ("<", ">="):
            response = client.get(path, {"filter": f"{field} {op} {LAST}"})
            assert response.status_code == 200, (path, op, response.content)
    below = client.get("/api/v1/runs", {"filter": f"created_at < {LAST}"}).json()["runs"]
    assert [r["id"] for r in below] == [str(run.pk)]
    assert client.get("/api/v1/runs", {"filter": f"created_at >= {LAST}"}).json()["runs"] == []


def test_a_models_dis_query_filter_past_the_last_microsecond_does_not_end_the_run(acme):
    """The filter is the model's to write (a prompt-injected one, say): the run goes on."""
    agent = deploy(acme, FINANCE, TRIAGE)
    arguments = {"question": "Invoices?", "filter": f"received_at < {LAST}"}
    script = [{"tool_call": {"tool": "find_invoices", "arguments": arguments}}, {"respond": "done"}]
    with schema_context(acme.schema_name):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="hi", script=script)
    run = advance(run, acme.schema_name)
    assert (run.status, run.reason) == ("succeeded", ""), (run.reason, run.message)
    with schema_context(acme.schema_name):
        tool = run.steps.get(node="tool")
    assert (tool.status, tool.error) == ("ok", "")

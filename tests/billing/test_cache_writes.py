"""Cache writes, the fourth kind of token: Anthropic's `cache_creation_input_tokens` reach the
ledger as `cache_write_tokens` (a part of the input tokens), priced at the price list's cache-write
price, or at the input price where it has none (every figure as before); roll-ups, statements,
MCP-facing summaries and metrics count them; a bad cache-write price is refused with
`price_invalid` and writes nothing; one workspace's cache writes never touch another's usage."""

import io
import ipaddress
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_tenants.utils import schema_context
from langchain_core.messages import HumanMessage, SystemMessage
from prometheus_client import REGISTRY

from apps.billing.models import Price, UsageDay, UsageRecord
from apps.billing.rls import usage_scope
from apps.billing.rollups import usage_rollup
from apps.billing.selectors import usage_summary
from apps.billing.services import price_set
from apps.billing.statements import period_parse, statement
from apps.providers.services import credential_set
from apps.runs.services import run_start
from apps.runs.usage import usage_record
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ProviderSettings, provider_create
from tests.api.conftest import api, issue
from tests.conftest import audit_events, tenant_user
from tests.providers.fake_models import FakeModelServer, Reply, anthropic_message, openai_completion, text
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

KEY = "sk-ant-api03-Hk2Jd8sLq0Wm4Nz7Xc1Vb5"
MODEL = "anthropic-1"  # the model of agent_yaml(provider="anthropic")
CONVERSATION = [SystemMessage(content="You triage invoices."), HumanMessage(content="Triage INV-7.")]
JANUARY = datetime(2026, 1, 5, 12, tzinfo=UTC)


@pytest.fixture
def keys(settings):
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.FOUNDRY_PROVIDER_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    settings.FOUNDRY_PROVIDER_MAX_RETRIES = 0


@pytest.fixture
def server():
    server = FakeModelServer()
    yield server
    server.close()


def price(*, model: str = MODEL, cache_write=None, provider: str = "anthropic") -> Price:
    return Price.objects.create(
        provider=provider, model=model, input_per_mtok=Decimal("3"), output_per_mtok=Decimal("15"),
        cached_per_mtok=Decimal("0.3"), cache_write_per_mtok=cache_write,
        effective_from=timezone.now() - timedelta(days=1), created_by="test",
    )  # fmt: skip


def anthropic_run(tenant, server) -> UsageRecord:
    """One run of an agent on `anthropic`, answered by the loopback server; its ledger row."""
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        credential_set(actor=owner, provider="anthropic", api_key=KEY, base_url=server.origin)
    agent = deploy(tenant, FINANCE, agent_yaml(provider="anthropic"))
    with schema_context(tenant.schema_name):
        run = run_start(actor=owner, agent=agent, input="Triage INV-7.")
    run = advance(run, tenant.schema_name)
    assert run.status == "succeeded", (run.reason, run.message)
    with usage_scope(tenant.pk):
        [row] = UsageRecord.objects.filter(run_id=run.pk)
    return row


def cached_reply() -> Reply:
    # 40 fresh prompt tokens, 1,000 read from the cache, 200 written to it; 6 output tokens.
    body = anthropic_message(
        text("INV-7 is fine."), input_tokens=40, output_tokens=6, cache_read=1000, cache_creation=200
    )
    return Reply(body=body)


def ledger_add(tenant, *, tokens=(100, 10, 5, 20), cost="0.25", when=JANUARY, model="m1") -> UsageRecord:
    with usage_scope(tenant.pk):
        return UsageRecord.objects.create(
            tenant_id=tenant.pk, project="p", agent="alpha", provider="anthropic", model=model,
            input_tokens=tokens[0], output_tokens=tokens[1], cached_tokens=tokens[2], cache_write_tokens=tokens[3],
            latency_ms=1.0, cost_usd=None if cost is None else Decimal(cost), created_at=when,
        )  # fmt: skip


# --- recording and pricing ------------------------------------------------------------------------


def test_anthropic_cache_writes_are_recorded_and_priced_at_the_cache_write_price(acme, keys, server):
    price(cache_write=Decimal("3.75"))
    server.queue(cached_reply())
    row = anthropic_run(acme, server)
    assert (row.input_tokens, row.output_tokens, row.cached_tokens, row.cache_write_tokens) == (1240, 6, 1000, 200)
    # 40 x 3 + 1,000 x 0.3 + 200 x 3.75 + 6 x 15, per million
    assert row.cost_usd == Decimal("0.00126")


def test_without_a_cache_write_price_cache_writes_cost_the_input_price(acme, keys, server):
    price(cache_write=None)
    server.queue(cached_reply())
    row = anthropic_run(acme, server)
    assert row.cache_write_tokens == 200
    # (40 + 200) x 3 + 1,000 x 0.3 + 6 x 15, per million: what the call cost before cache writes were a kind
    assert row.cost_usd == Decimal("0.00111")


def test_openai_cache_writes_come_from_prompt_tokens_details_and_are_0_when_absent(server):
    credentials = {"api_key": "sk-test-Zq8LmN3pR7tV1wX5yB9c", "base_url": server.origin + "/v1", "max_retries": 0}
    openai = provider_create(
        "openai",
        ProviderSettings(model="gpt-test", credentials=credentials, network=NetworkPolicy(allow_private=True)),
    )
    reported = openai_completion("Hi.", prompt_tokens=1000, cached_tokens=600)
    reported["usage"]["prompt_tokens_details"]["cache_write_tokens"] = 300
    overstated = openai_completion("Hi.", prompt_tokens=1000, cached_tokens=600)
    overstated["usage"]["prompt_tokens_details"]["cache_write_tokens"] = 900  # more than the prompt holds
    for body in (reported, overstated, openai_completion("Hi.", prompt_tokens=1000, cached_tokens=600)):
        server.queue(Reply(body=body))
    usages = [openai.complete(CONVERSATION, []).usage for _ in range(3)]
    assert [(u.input_tokens, u.cached_tokens, u.cache_write_tokens) for u in usages] == [
        (1000, 600, 300),
        (1000, 600, 400),
        (1000, 600, 0),
    ]


def test_the_scripted_provider_reports_no_cache_writes(db):
    reply = provider_create("scripted", ProviderSettings(model="m")).complete(CONVERSATION, [])
    assert reply.usage.input_tokens > 0 and reply.usage.cache_write_tokens == 0


def test_usage_record_prices_every_kind(acme):
    price(model="claude-x", cache_write=Decimal("3.75"))
    with schema_context("acme"):
        row = usage_record(
            tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="anthropic", model="claude-x",
            input_tokens=1_000_000, output_tokens=100_000, cached_tokens=200_000, cache_write_tokens=300_000,
        )  # fmt: skip
        without = usage_record(
            tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="anthropic", model="claude-x",
            input_tokens=1_000_000, output_tokens=100_000, cached_tokens=200_000,
        )  # fmt: skip
    # 500,000 x 3 + 200,000 x 0.3 + 300,000 x 3.75 + 100,000 x 15, per million = 1.5 + 0.06 + 1.125 + 1.5
    assert row.cost_usd == Decimal("4.185")
    assert without.cost_usd == Decimal("3.96")  # 2.4 + 0.06 + 1.5: no cache writes, the formula as before
    with usage_scope(acme.pk):
        assert UsageRecord.objects.get(pk=row.pk).cache_write_tokens == 300_000
        assert UsageRecord.objects.get(pk=without.pk).cache_write_tokens == 0


def test_metrics_count_cache_writes_as_a_kind_of_their_own(acme):
    price(model="claude-m", cache_write=Decimal("3.75"))
    labels = {"tenant": "acme", "provider": "anthropic", "model": "claude-m"}

    def tokens(kind: str) -> float:
        return REGISTRY.get_sample_value("foundry_model_tokens_total", {**labels, "kind": kind}) or 0.0

    before = {kind: tokens(kind) for kind in ("input", "output", "cached", "cache_write")}
    with schema_context("acme"):
        usage_record(
            tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="anthropic", model="claude-m",
            input_tokens=1000, output_tokens=10, cached_tokens=300, cache_write_tokens=200,
        )  # fmt: skip
    after = {kind: tokens(kind) - before[kind] for kind in before}
    assert after == {"input": 1000, "output": 10, "cached": 300, "cache_write": 200}


# --- roll-ups and statements ----------------------------------------------------------------------


def test_roll_ups_and_statements_count_cache_writes(acme):
    ledger_add(acme)
    ledger_add(acme, tokens=(50, 5, 0, 30), cost="0.5")
    ledger_add(acme, model="m2", tokens=(7, 1, 0, 0), cost=None)
    assert usage_rollup(tenant_id=acme.pk, day=JANUARY.date()) == 2
    with usage_scope(acme.pk):
        days = list(UsageDay.objects.order_by("model").values_list("model", "input_tokens", "cache_write_tokens"))
    assert days == [("m1", 150, 50), ("m2", 7, 0)]
    assert usage_rollup(tenant_id=acme.pk, day=JANUARY.date()) == 0  # unchanged: not rewritten

    result = statement(tenant_id=acme.pk, tenant_slug="acme", period=period_parse(month="2026-01"))
    assert [(line["model"], line["cached_tokens"], line["cache_write_tokens"]) for line in result.lines] == [
        ("m1", 5, 50),
        ("m2", 0, 0),
    ]
    assert result.totals == {
        "calls": 3, "input_tokens": 157, "output_tokens": 16, "cached_tokens": 5, "cost_usd": "0.75000000",
        "unpriced_calls": 1, "cache_write_tokens": 50,
    }  # fmt: skip
    csv = result.to_csv().splitlines()
    assert csv[0].endswith(",cost_usd,unpriced_calls,cache_write_tokens")
    assert csv[-1] == "TOTAL,,,,3,157,16,5,0.75000000,1,50"


def test_the_api_statement_has_cache_writes(acme, owner_client):
    ledger_add(acme)
    body = api(acme, issue(acme)).get("/api/v1/usage/statement", {"month": "2026-01"}).json()
    assert body["totals"]["cache_write_tokens"] == 20 and body["lines"][0]["cache_write_tokens"] == 20
    console = owner_client.get("/usage/statement/", {"month": "2026-01", "format": "csv"})
    assert console.status_code == 200 and console.content.decode().splitlines()[-1].endswith(",20")


def test_a_day_counted_from_its_roll_up_keeps_its_cache_writes(acme):
    day = date(2026, 1, 7)  # its ledger rows gone (retention): only the roll-up counts it
    with usage_scope(acme.pk):
        UsageDay.objects.create(
            tenant_id=acme.pk, day=day, project="p", agent="alpha", provider="anthropic", model="m1", calls=4,
            input_tokens=400, output_tokens=40, cached_tokens=100, cache_write_tokens=60, cost_usd=Decimal("1"),
            unpriced_calls=0,
        )  # fmt: skip
    [row] = usage_summary(
        tenant_id=acme.pk, start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 2, 1, tzinfo=UTC)
    )
    assert (row["calls"], row["cached_total"], row["cache_write_total"]) == (4, 100, 60)


# --- prices ---------------------------------------------------------------------------------------

PRICE = {"provider": "anthropic", "model": "claude-z", "input_per_mtok": "3", "output_per_mtok": "15",
         "cached_per_mtok": "0.3"}  # fmt: skip


def test_a_cache_write_price_is_set_kept_and_audited(db):
    price = price_set(actor="ops", cache_write_per_mtok="3.75", **PRICE)
    assert Price.objects.get(pk=price.pk).cache_write_per_mtok == Decimal("3.75")
    [event] = audit_events("public", action="price.set")
    assert event.data["cache_write_per_mtok"] == "3.750000"
    later = price_set(actor="ops", effective_from=timezone.now() + timedelta(days=1), cache_write_per_mtok="", **PRICE)
    assert later.cache_write_per_mtok is None
    assert audit_events("public", action="price.set")[-1].data["cache_write_per_mtok"] is None


@pytest.mark.parametrize("value", ["-1", "-0.000001", "10000.01", "1e9", "NaN", "cheap", "0.0000001", True])
def test_a_bad_cache_write_price_is_refused_and_writes_nothing(db, value):
    with pytest.raises(ValidationError) as refused:
        price_set(actor="ops", cache_write_per_mtok=value, **PRICE)
    assert [e.code for e in refused.value.error_dict["cache_write_per_mtok"]] == ["price_invalid"]
    assert not Price.objects.exists()
    assert not audit_events("public", action="price.set")


def test_the_console_sets_and_refuses_cache_write_prices(operator_client):
    form = {**PRICE, "effective_from": ""}
    refused = operator_client.post("/prices/new/", {**form, "cache_write_per_mtok": "-0.5"})
    assert refused.status_code == 400
    assert [e.code for e in refused.context["form"].errors.as_data()["cache_write_per_mtok"]] == ["price_invalid"]
    assert not Price.objects.exists() and not audit_events("public", action="price.set")
    assert operator_client.post("/prices/new/", {**form, "cache_write_per_mtok": "3.75"}).status_code == 302
    assert Price.objects.get().cache_write_per_mtok == Decimal("3.75")
    page = operator_client.get("/prices/").content.decode()
    assert "<th>Cache write</th>" in page and "3.750000" in page


def test_the_console_leaves_the_cache_write_price_empty_for_the_input_price(operator_client):
    assert operator_client.post("/prices/new/", {**PRICE, "effective_from": ""}).status_code == 302
    assert Price.objects.get().cache_write_per_mtok is None
    assert 'title="Cache writes cost the input price"' in operator_client.get("/prices/").content.decode()


def test_the_command_sets_and_refuses_cache_write_prices(db):
    out = io.StringIO()
    call_command("set_price", "anthropic", "claude-c", "--input", "3", "--output", "15", "--cache-write", "3.75",
                 stdout=out)  # fmt: skip
    assert Price.objects.get().cache_write_per_mtok == Decimal("3.75")
    assert "cache write 3.750000" in out.getvalue()
    with pytest.raises(CommandError, match="cache_write_per_mtok"):
        call_command("set_price", "anthropic", "claude-d", "--input", "3", "--output", "15", "--cache-write", "-1",
                     stdout=io.StringIO())  # fmt: skip
    assert list(Price.objects.values_list("model", flat=True)) == ["claude-c"]


# --- isolation ------------------------------------------------------------------------------------


def test_one_workspaces_cache_writes_never_touch_anothers_usage(acme, globex, keys, server):
    theirs = ledger_add(globex, tokens=(1000, 100, 0, 0), cost="9")
    usage_rollup(tenant_id=globex.pk, day=JANUARY.date())
    price(cache_write=Decimal("3.75"))
    server.queue(cached_reply())
    ours = anthropic_run(acme, server)
    ledger_add(acme)
    usage_rollup(tenant_id=acme.pk, day=JANUARY.date())

    with usage_scope(globex.pk):
        rows = list(UsageRecord.objects.values_list("pk", "cache_write_tokens", "cost_usd"))
        days = list(UsageDay.objects.values_list("tenant_id", "input_tokens", "cache_write_tokens"))
    assert rows == [(theirs.pk, 0, Decimal("9"))]
    assert days == [(globex.pk, 1000, 0)]
    result = statement(tenant_id=globex.pk, tenant_slug="globex", period=period_parse(month="2026-01"))
    assert (result.totals["cache_write_tokens"], result.totals["cost_usd"]) == (0, "9.00000000")
    with usage_scope(acme.pk):  # acme's scope sees acme's rows only
        assert set(UsageRecord.objects.values_list("tenant_id", flat=True)) == {acme.pk}
        assert UsageRecord.objects.filter(pk=theirs.pk).count() == 0
    assert ours.cache_write_tokens == 200

"""The dashboard's "Tokens in the time range by tenant" agrees with the usage ledger: cached tokens
and cache writes are parts of the input tokens, so that panel sums only `input` and `output`."""

import json

from django_tenants.utils import schema_context
from prometheus_client import REGISTRY

from apps.runs.usage import usage_record
from tests.conftest import ROOT, usage_rows

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "foundry-overview.json"
KINDS = ("input", "output", "cached", "cache_write")


def _panel_expr(title: str) -> str:
    dashboard = json.loads(DASHBOARD.read_text())
    [panel] = [p for p in dashboard["panels"] if p.get("title") == title]
    [target] = panel["targets"]
    return target["expr"]


def _kinds_summed(expr: str) -> tuple[str, ...]:
    """The kinds the expression's selector lets through (it has no `kind` matcher: all of them)."""
    if "kind" not in expr:
        return KINDS
    if 'kind=~"input|output"' in expr or 'kind=~"output|input"' in expr:
        return ("input", "output")
    return KINDS


def _tokens(labels: dict, kinds) -> float:
    return sum(REGISTRY.get_sample_value("foundry_model_tokens_total", {**labels, "kind": k}) or 0.0 for k in kinds)


def test_tokens_by_tenant_panel_agrees_with_the_usage_ledger(acme):
    expr = _panel_expr("Tokens in the time range by tenant")
    kinds = _kinds_summed(expr)
    labels = {"tenant": "acme", "provider": "scripted", "model": "unpriced"}
    before = _tokens(labels, kinds)
    with schema_context("acme"):
        record = usage_record(tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None,
                              provider="scripted", model="m-cached-review", input_tokens=1000,
                              output_tokens=100, cached_tokens=800, cache_write_tokens=150)  # fmt: skip
    [row] = usage_rows(acme, pk=record.pk)
    ledger = row.input_tokens + row.output_tokens  # what billing_usage_month.tokens adds up
    shown = _tokens(labels, kinds) - before
    assert shown == ledger, (
        f"the panel ({expr}) shows {shown:g} tokens for a call the ledger counts as {ledger}: "
        "cached tokens or cache writes, already inside input, are added again"
    )

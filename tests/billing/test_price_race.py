"""A price set for "now" starts at a moment before it commits: a usage record written in between
waits for it to commit and is priced with it (migration 0006), not with the price before."""

import threading
import time
from decimal import Decimal

from django.db import connection
from django.utils import timezone

import apps.billing.services as billing_services
from apps.billing.models import Price, UsageRecord
from apps.billing.rls import usage_scope
from apps.billing.services import price_set
from apps.runs.usage import usage_record

PROVIDER, MODEL = "scripted", "review-usage-race"


def test_a_usage_row_written_after_a_new_price_starts_is_priced_with_it(acme, monkeypatch):
    """docs/limits.md "Prices": every usage record is priced "with the price in effect at that
    moment". `price_set` writes its audit event on the platform chain (held here, as a busy chain
    would) before it commits: a record written meanwhile, after the price's start, costs the new
    price once it commits."""
    in_window, release, committed, cleanup = (threading.Event() for _ in range(4))
    real_audit = billing_services.audit_record

    def slow_audit(**kwargs):  # the platform chain's lock, held by another event, say
        in_window.set()
        release.wait(10)
        return real_audit(**kwargs)

    monkeypatch.setattr(billing_services, "audit_record", slow_audit)
    failures = []

    def operator_sets_a_price():
        try:
            price_set(
                actor="operator@platform.test",
                provider=PROVIDER,
                model=MODEL,
                input_per_mtok="2",
                output_per_mtok="8",
                cached_per_mtok="0.5",
            )
            committed.set()
            cleanup.wait(20)
            Price.objects.filter(provider=PROVIDER, model=MODEL).delete()  # this test's price only
        except Exception as exc:  # noqa: BLE001 — reported below
            failures.append(repr(exc))
        finally:
            in_window.set()
            committed.set()
            connection.close()

    thread = threading.Thread(target=operator_sets_a_price)
    thread.start()
    try:
        assert in_window.wait(10)
        time.sleep(0.01)
        written_at = timezone.now()
        threading.Timer(0.3, release.set).start()  # the record below waits for the price's commit
        record = usage_record(
            tenant_id=acme.pk,
            project="p",
            agent="a",
            run_id=None,
            step=None,
            provider=PROVIDER,
            model=MODEL,
            input_tokens=1_000_000,
            output_tokens=1_000_000,
            created_at=written_at,
        )
        release.set()
        assert committed.wait(20) and not failures, failures
        in_effect = (
            Price.objects.filter(provider=PROVIDER, model=MODEL, effective_from__lte=written_at)
            .order_by("-effective_from")
            .first()
        )
        expected = None if in_effect is None else in_effect.input_per_mtok + in_effect.output_per_mtok
        with usage_scope(acme.pk):
            cost = UsageRecord.objects.get(pk=record.pk).cost_usd
        assert cost == expected == Decimal("10"), (
            f"written at {written_at}; the price list says {in_effect} was in effect then "
            f"(cost {expected}), but the row was priced {cost} (None: unpriced)"
        )
    finally:
        release.set()
        cleanup.set()
        thread.join(20)

"""The daily roll-up of the usage ledger (UsageDay), and the one reader of usage per day.

`usage_rollup` recomputes a tenant's day from the ledger in one set-based statement
(INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE), inside the tenant's Row-Level
Security scope. It is idempotent: running it again writes the same rows, and rows that did not
change are not rewritten. The ledger only grows, except where retention deletes the rows of days
already rolled up (docs/retention.md, `usage_detail_days`): a group's roll-up is never replaced
by one of fewer calls, so re-rolling such a day keeps what it counted, and groups never vanish. A beat job
(apps/billing/tasks.py) re-rolls today and yesterday every hour, so yesterday's last calls are
counted once the day is over; and any of the CATCH_UP_DAYS days before yesterday that holds calls
but was last rolled up before it ended (every run of the day after failed: beat or the workers
down, the queue lost), as marked in Redis by each roll-up (`rollup_marked`). A lost mark costs a
re-roll, never a day: a day without one is checked against the ledger. A mark also holds the calls
its roll-up left in UsageDay, and counts only while UsageDay still holds as many: Redis outlives a
restore of the database (or of a workspace), whose UsageDay may stop at a roll-up before the
mark's, and that day is then rolled up again (it was skipped for good, under-counted).

`usage_daily` is what charts read: UsageDay for the days before yesterday (UTC), and for
yesterday and today the ledger too, taking the larger figure (yesterday's roll-up may not have
run yet).
"""

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from redis.exceptions import RedisError

from apps.billing.models import UsageDay, UsageRecord
from apps.billing.rls import usage_scope

logger = logging.getLogger(__name__)

# The day's rows of one tenant, summed per group; a group whose sums are unchanged is left alone.
_ROLLUP_SQL = (
    "INSERT INTO public.billing_usage_day AS d (tenant_id, day, project, agent, provider, model, calls,"
    " input_tokens, output_tokens, cached_tokens, cache_write_tokens, cost_usd, unpriced_calls)"
    " SELECT u.tenant_id, %s::date, u.project, u.agent, u.provider, u.model, count(*), sum(u.input_tokens),"
    " sum(u.output_tokens), sum(u.cached_tokens), sum(u.cache_write_tokens), coalesce(sum(u.cost_usd), 0),"
    " count(*) FILTER (WHERE u.cost_usd IS NULL)"
    " FROM public.billing_usage u WHERE u.tenant_id = %s AND u.created_at >= %s AND u.created_at < %s"
    " GROUP BY u.tenant_id, u.project, u.agent, u.provider, u.model"
    " ON CONFLICT (tenant_id, day, project, agent, provider, model) DO UPDATE SET calls = EXCLUDED.calls,"
    " input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,"
    " cached_tokens = EXCLUDED.cached_tokens, cache_write_tokens = EXCLUDED.cache_write_tokens,"
    " cost_usd = EXCLUDED.cost_usd, unpriced_calls = EXCLUDED.unpriced_calls"
    " WHERE EXCLUDED.calls >= d.calls"
    " AND (d.calls, d.input_tokens, d.output_tokens, d.cached_tokens, d.cache_write_tokens, d.cost_usd,"
    " d.unpriced_calls) IS DISTINCT FROM (EXCLUDED.calls, EXCLUDED.input_tokens, EXCLUDED.output_tokens,"
    " EXCLUDED.cached_tokens, EXCLUDED.cache_write_tokens, EXCLUDED.cost_usd, EXCLUDED.unpriced_calls)"
)

DAILY_KEYS = ("project", "agent", "model", "tenant_id")
CATCH_UP_DAYS = 7  # the days before yesterday the hourly job checks (docs/billing.md)
# When the day's last roll-up began (epoch seconds) and the calls it left in UsageDay: `<began>:<calls>`.
_MARK = "foundry:billing:rolled:{tenant_id}:{day}"
_MARK_SECONDS = (CATCH_UP_DAYS + 2) * 86400
# Of the days given, those the tenant's ledger holds calls of.
_DAYS_WITH_CALLS = (
    "SELECT d FROM unnest(%s::date[]) AS d WHERE EXISTS (SELECT 1 FROM public.billing_usage u"
    " WHERE u.tenant_id = %s AND u.created_at >= d::timestamp AT TIME ZONE 'UTC'"
    " AND u.created_at < (d + 1)::timestamp AT TIME ZONE 'UTC') ORDER BY d"
)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC moments [start, end) of `day`."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def today() -> date:
    return timezone.now().astimezone(UTC).date()


def usage_rollup(*, tenant_id: int, day: date, began: datetime | None = None) -> int:
    """Recompute the tenant's UsageDay rows of `day` from the ledger; the number of rows written.
    `began`: then also mark the day rolled up as of then (`rollup_marked`), while the workspace's
    row is held, as what the roll-up wrote is."""
    start, end = day_bounds(day)
    marked = False
    try:
        with usage_scope(tenant_id), connection.cursor() as cursor:
            # The workspace's row held to the end (a purge takes it FOR UPDATE): a purge running now
            # finishes first, and then there is no workspace to roll up, or mark; or it waits for
            # this one and deletes what it wrote, and its mark. Without it, rows written (or a
            # mark set) after the purge's were left behind.
            if not _tenant_held(cursor, tenant_id):
                return 0
            cursor.execute(_ROLLUP_SQL, [day, tenant_id, start, end])
            written = cursor.rowcount
            if began is not None:
                calls = _rolled_calls(cursor, tenant_id, [day]).get(day, 0)
                marked = _marked_or_warned(tenant_id, day, began, calls)
    except BaseException:
        if marked:  # set for a roll-up that did not commit after all
            _unmarked(tenant_id, day)
        raise
    return written


def _tenant_held(cursor, tenant_id: int) -> bool:
    """Whether the workspace is there, its row held (FOR KEY SHARE) to the transaction's end."""
    cursor.execute("SELECT 1 FROM public.tenants_tenant WHERE id = %s FOR KEY SHARE", [tenant_id])
    return cursor.fetchone() is not None


def _rolled_calls(cursor, tenant_id: int, days: list[date]) -> dict[date, int]:
    """The calls UsageDay holds for each of the tenant's `days` that it holds any of."""
    cursor.execute(
        "SELECT day, sum(calls) FROM public.billing_usage_day WHERE tenant_id = %s AND day = ANY(%s::date[])"
        " GROUP BY day",
        [tenant_id, days],
    )
    return {day: int(calls) for day, calls in cursor.fetchall()}


def _marked_or_warned(tenant_id: int, day: date, began: datetime, calls: int) -> bool:
    try:
        rollup_marked(tenant_id, day, began, calls)
    except RedisError:  # unmarked, the day is checked against the ledger by the next runs
        logger.warning("usage roll-up of tenant %s, %s: not marked (Redis)", tenant_id, day.isoformat())
        return False
    return True


def _unmarked(tenant_id: int, day: date) -> None:
    from django_redis import get_redis_connection

    try:
        get_redis_connection("default").delete(_MARK.format(tenant_id=tenant_id, day=day.isoformat()))
    except RedisError:
        logger.warning("usage roll-up of tenant %s, %s: mark left on a failed roll-up", tenant_id, day.isoformat())


def rollup_days(now: datetime | None = None) -> list[date]:
    """The days the beat job re-rolls: yesterday (its last calls came after the last run) and today."""
    current = (now or timezone.now()).astimezone(UTC).date()
    return [current - timedelta(days=1), current]


def rollup_marked(tenant_id: int, day: date, began: datetime, calls: int) -> None:
    """Mark that a roll-up of the tenant's `day` which began at `began` committed, leaving `calls`
    calls in UsageDay."""
    from django_redis import get_redis_connection

    key = _MARK.format(tenant_id=tenant_id, day=day.isoformat())
    get_redis_connection("default").set(key, f"{began.timestamp()}:{calls}", ex=_MARK_SECONDS)


def _mark_read(mark: bytes | None) -> tuple[float, int] | None:
    """(began, calls) of a mark; None for none, or one of another form (an older release's)."""
    try:
        began, calls = (mark or b"").decode().split(":")
        return float(began), int(calls)
    except ValueError:
        return None


def rollup_behind(tenant_id: int, now: datetime | None = None) -> list[date]:
    """The CATCH_UP_DAYS days before yesterday that the tenant's ledger holds calls of, and whose
    last roll-up (if any) began before the day ended (rolled up too early, or never), or left more
    calls in UsageDay than it now holds (the database restored since). A day found without calls
    is marked, so it is looked at once."""
    from django_redis import get_redis_connection

    current = (now or timezone.now()).astimezone(UTC).date()
    days = [current - timedelta(days=n) for n in range(CATCH_UP_DAYS + 1, 1, -1)]
    redis = get_redis_connection("default")
    marks = redis.mget([_MARK.format(tenant_id=tenant_id, day=day.isoformat()) for day in days])
    with usage_scope(tenant_id), connection.cursor() as cursor:
        if not _tenant_held(cursor, tenant_id):  # purged since it was listed: nothing to mark
            return []
        rolled = _rolled_calls(cursor, tenant_id, days)
        unsure = []
        for day, mark in zip(days, marks, strict=True):
            read = _mark_read(mark)
            if read is None or read[0] < day_bounds(day)[1].timestamp() or read[1] != rolled.get(day, 0):
                unsure.append(day)
        if not unsure:
            return []
        cursor.execute(_DAYS_WITH_CALLS, [unsure, tenant_id])
        behind = [row[0] for row in cursor.fetchall()]
        checked = now or timezone.now()
        for day in unsure:
            if day not in behind:  # no calls, and none will come: a closed day
                rollup_marked(tenant_id, day, checked, rolled.get(day, 0))
    return behind


def usage_daily(*, tenant_ids: Iterable[int], start: date, end: date, by: str) -> list[dict]:
    """Usage per day in [start, end) of `tenant_ids`, one row per day and value of `by` (one of
    DAILY_KEYS; "model" is named provider/model): `day`, `key`, `calls`, `tokens` (input + output),
    `cost_usd` (of the priced calls). Ordered by day, then key."""
    if by not in DAILY_KEYS:
        raise ValueError(f"usage per day is grouped by one of {DAILY_KEYS}, not {by!r}")
    ids = sorted(set(tenant_ids))
    fields = ("provider", "model") if by == "model" else (by,)
    closed_end = min(end, today())
    cells: dict[tuple, dict] = {}
    with usage_scope(*ids):
        # The ledger for today and yesterday, whose roll-up the hourly job may not have finished
        # (it rolls both each hour: an older day's last roll-up came after the day ended).
        first, _ = day_bounds(max(start, today() - timedelta(days=1)))
        _, last = day_bounds(end - timedelta(days=1))
        ledger = (
            UsageRecord.objects.filter(tenant_id__in=ids, created_at__gte=first, created_at__lt=last)
            .annotate(day=TruncDate("created_at", tzinfo=UTC))
            .values("day", *fields)
            .annotate(n=Count("id"), tokens=Sum(F("input_tokens") + F("output_tokens")), cost_usd=Sum("cost_usd"))
            .order_by()
        )
        for row in ledger:
            cells[(row["day"], *(row[name] for name in fields))] = row
        if start < closed_end:
            # Yesterday counts from its roll-up where that holds more calls than the ledger still
            # does (retention deleted its rows); else from the ledger (rolled up before its last
            # calls), as usage_summary does; older days from their roll-up.
            rolled = (
                UsageDay.objects.filter(tenant_id__in=ids, day__gte=start, day__lt=closed_end)
                .values("day", *fields)
                .annotate(n=Sum("calls"), tokens=Sum(F("input_tokens") + F("output_tokens")), cost_usd=Sum("cost_usd"))
                .order_by()
            )
            for row in rolled:
                cell = (row["day"], *(row[name] for name in fields))
                if cell not in cells or row["n"] > cells[cell]["n"]:
                    cells[cell] = row
    return sorted((_daily_row(row, fields) for row in cells.values()), key=lambda r: (r["day"], str(r["key"])))


def _daily_row(row: dict, fields: Sequence[str]) -> dict:
    key = "/".join(str(row[name]) for name in fields)
    cost = row["cost_usd"] if row["cost_usd"] is not None else Decimal(0)
    return {"day": row["day"], "key": key, "calls": row["n"], "tokens": row["tokens"] or 0, "cost_usd": cost}

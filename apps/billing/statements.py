"""A tenant's usage statement for a period: by project, agent and model (provider and model),
the calls, tokens, cost and unpriced calls of each, and the totals; rendered as JSON or CSV.

`cache_write_tokens` (of the input tokens, those written to the provider's prompt cache) is the
last column, so the columns before it keep their places in a CSV read by position.

A period is a calendar month (UTC) "YYYY-MM", or a range of days "YYYY-MM-DD" with both ends
included, at most MAX_DAYS long. It may not start in the future, nor end after today (the
current month is allowed: it is counted until now). Refusals are ServiceErrors with the codes
`period_invalid` and `period_in_future` (HTTP 400; the CLI prints the message).

Statements are read from the ledger itself (`usage_summary`, on the index `tenant_id,
created_at`), not from the daily roll-ups: a bill must be exact whether or not the beat job has
run since the last call, and statements are asked for rarely. Measured on PostgreSQL 15 with
one million ledger rows for the tenant in the month (and a million of another tenant's beside
them; 120 lines): 430 ms from the ledger, 6 ms from UsageDay — fine for a download. Charts,
read on every page view, use the roll-ups (apps/billing/rollups.py `usage_daily`).
"""

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from apps.billing.selectors import usage_summary
from foundry.errors import ServiceError
from foundry.query import query_once

MAX_DAYS = 366
MIN_YEAR = 2000
FORMATS = ("json", "csv")
COLUMNS = (
    "project",
    "agent",
    "provider",
    "model",
    "calls",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "unpriced_calls",
    "cache_write_tokens",
)
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})\Z")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_CENTS = Decimal("0.00000001")


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive
    month: str | None = None  # "YYYY-MM" when the period is a calendar month

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def label(self) -> str:
        return self.month or f"{self.start.isoformat()}_{self.last_day.isoformat()}"


def _invalid(message: str) -> ServiceError:
    return ServiceError("period_invalid", message)


def _month_parse(value: str) -> date:
    match = _MONTH.match(value)
    if not match:
        raise _invalid(f"month: {value[:40]!r} is not a month YYYY-MM.")
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise _invalid(f"month: {value!r} is not a month YYYY-MM.")
    if year < MIN_YEAR:
        raise _invalid(f"month: statements start in {MIN_YEAR}.")
    return date(year, month, 1)


def _day_parse(value: str, name: str) -> date:
    try:
        if not _DAY.match(value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise _invalid(f"{name}: {value[:40]!r} is not a day YYYY-MM-DD.") from None
    if day.year < MIN_YEAR:
        raise _invalid(f"{name}: statements start in {MIN_YEAR}.")
    return day


def period_parse(
    *, month: str | None = None, start: str | None = None, end: str | None = None, today: date | None = None
) -> Period:
    """The period a statement is asked for: `month`, or `start` and `end` (days, both included);
    nothing: the current month. Raises ServiceError `period_invalid` or `period_in_future`."""
    today = today or timezone.now().astimezone(UTC).date()
    if month is not None and (start is not None or end is not None):
        raise _invalid("Give a month, or a start and an end day, not both.")
    if month is None and start is None and end is None:
        month = f"{today:%Y-%m}"
    if month is not None:
        first = _month_parse(month)
        if first > today:  # before the end is computed: December 9999 has none
            raise ServiceError("period_in_future", f"{month} has not begun; a statement covers usage recorded.")
        end = date(first.year + 1, 1, 1) if first.month == 12 else date(first.year, first.month + 1, 1)
        return Period(first, end, month=month)
    if start is None or end is None:
        raise _invalid("Give both a start and an end day.")
    first, last = _day_parse(start, "start"), _day_parse(end, "end")
    if last < first:
        raise _invalid(f"The period ends ({last}) before it starts ({first}).")
    if first > today or last > today:
        raise ServiceError("period_in_future", f"The period reaches past today ({today}, UTC).")
    if (last - first).days + 1 > MAX_DAYS:
        raise _invalid(f"A statement covers at most {MAX_DAYS} days.")
    return Period(first, last + timedelta(days=1))


def format_parse(value: str | None) -> str:
    if value is None:
        return "json"
    if value not in FORMATS:
        raise ServiceError("format_invalid", f"format is one of {', '.join(FORMATS)}.")
    return value


def statement_query(query) -> tuple[str, Period]:
    """(format, period) of a statement's query string (a QueryDict: the API's and the console's
    alike), each parameter given at most once; raises ServiceError as the parsers do."""

    def single(name: str) -> str | None:
        return query_once(query, name, "format_invalid" if name == "format" else "period_invalid")

    fmt = format_parse(single("format"))
    month = single("month")
    return fmt, period_parse(month=month or None, start=single("start"), end=single("end"))


@dataclass(frozen=True)
class Statement:
    tenant: str  # the tenant's slug
    period: Period
    as_of: datetime  # usage recorded before this moment is counted
    lines: list[dict]
    totals: dict

    def to_dict(self) -> dict:
        return {
            "tenant": self.tenant,
            "period": {
                "month": self.period.month,
                "start": self.period.start.isoformat(),
                "end": self.period.last_day.isoformat(),
            },
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "currency": "USD",
            "lines": self.lines,
            "totals": self.totals,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_csv(self) -> str:
        """One line per project, agent and model, then a line `TOTAL` (no project is spelt in capitals)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for line in self.lines:
            writer.writerow([_cell(line[name]) for name in COLUMNS])
        writer.writerow(["TOTAL", "", "", "", *(self.totals[name] for name in COLUMNS[4:])])
        return out.getvalue()

    @property
    def filename(self) -> str:
        return f"usage-{self.tenant}-{self.period.label}"


# A formula's first character, at a cell's start or after a separator a spreadsheet may split the
# cell at (`;` is the list separator of many locales, and Excel opens a .csv with it), or after a
# line break: read with another separator, a quoted cell's line break ends the row, and the next
# line starts a cell.
# The character is looked ahead at, not taken: a tab is both, and "x<tab><tab>=..." must get a quote
# after each tab (taking the second tab as the first one's formula character left the `=` bare).
# Quotes may come between: `a;"=1"` is written `"a;""=1"""`, and a spreadsheet splitting it at `;`
# reads `""=1` as an empty quoted string and then a formula; the quote goes before them.
_FORMULA = re.compile(r"(^|[,;\t|\r\n])(?=\"*[=+\-@\t\r])")


def _cell(value):
    # A spreadsheet runs a cell that starts with = + - @ as a formula; names are user data.
    if isinstance(value, str):
        return _FORMULA.sub(r"\1'", value)
    return value


def money_text(value) -> str:
    """A cost as every surface writes it: a decimal string with 8 places ("0.00000010"), never in
    scientific notation (str(Decimal) writes 1.0E-7)."""
    return f"{(value or Decimal(0)).quantize(_CENTS):f}"


def statement(*, tenant_id: int, tenant_slug: str, period: Period, now: datetime | None = None) -> Statement:
    """The tenant's statement of `period`, read from the ledger (see the module's docstring)."""
    now = now or timezone.now()
    start = datetime.combine(period.start, time.min, tzinfo=UTC)
    end = min(datetime.combine(period.end, time.min, tzinfo=UTC), now)
    rows = usage_summary(tenant_id=tenant_id, start=start, end=end, by=("project", "agent", "model"))
    lines = [
        {
            "project": row["project"],
            "agent": row["agent"],
            "provider": row["provider"],
            "model": row["model"],
            "calls": row["calls"],
            "input_tokens": row["input_total"],
            "output_tokens": row["output_total"],
            "cached_tokens": row["cached_total"],
            "cost_usd": money_text(row["cost_total"]),
            "unpriced_calls": row["unpriced"],
            "cache_write_tokens": row["cache_write_total"],
        }
        for row in rows
    ]
    totals = {
        name: sum(line[name] for line in lines)
        for name in ("calls", "input_tokens", "output_tokens", "cached_tokens", "unpriced_calls", "cache_write_tokens")
    }
    totals["cost_usd"] = money_text(sum((Decimal(line["cost_usd"]) for line in lines), Decimal(0)))
    totals = {name: totals[name] for name in COLUMNS[4:]}
    return Statement(tenant=tenant_slug, period=period, as_of=end, lines=lines, totals=totals)

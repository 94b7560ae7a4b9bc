"""AIP-132 `order_by`: "created_at desc, name" over an allowlist of fields.

NULLs sort last in both directions, and the primary key is always the final tie-breaker, so
every ordering is total — which keyset pagination (pagination.py) relies on.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import F, OrderBy

from foundry.filtering.errors import FilterError

_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\s+(asc|desc))?\s*$")
MAX_ORDER_LENGTH = 512


@dataclass(frozen=True)
class OrderField:
    name: str
    lookup: str
    descending: bool

    def expression(self) -> OrderBy:
        column = F(self.lookup)
        return column.desc(nulls_last=True) if self.descending else column.asc(nulls_last=True)

    def spelled(self) -> str:
        return f"{self.name} desc" if self.descending else self.name


@dataclass(frozen=True)
class Ordering:
    fields: tuple[OrderField, ...]  # the primary key last

    def expressions(self) -> list[OrderBy]:
        return [f.expression() for f in self.fields]

    def canonical(self) -> str:
        return ", ".join(f.spelled() for f in self.fields)


class OrderSpec:
    """Orderable fields of one resource: {"created_at": "created_at", "project": "project__name"}."""

    def __init__(self, fields: Mapping[str, str | None], *, default: str, pk: str = "id"):
        self.fields = {name: (lookup or name.replace(".", "__")) for name, lookup in fields.items()}
        self.pk = pk
        self.default = self.parse(default)

    def parse(self, text: str | None) -> Ordering:
        if text is None or not text.strip():
            return self.default
        if len(text) > MAX_ORDER_LENGTH:
            raise FilterError("order_by_too_long", f"order_by has at most {MAX_ORDER_LENGTH} characters.", None)
        fields, seen, offset = [], set(), 0
        for item in text.split(","):
            match = _ITEM.match(item)
            if not match:
                raise FilterError(
                    "invalid_order_by", 'Write order_by as "field" or "field desc", separated by commas.', offset
                )
            name, direction = match.group(1), match.group(2)
            position = offset + match.start(1)
            if name not in self.fields:
                allowed = ", ".join(sorted(self.fields))
                raise FilterError("unknown_order_field", f"Cannot order by {name!r}; use one of: {allowed}.", position)
            if name in seen:
                raise FilterError("duplicate_order_field", f"{name!r} appears twice in order_by.", position)
            seen.add(name)
            fields.append(OrderField(name, self.fields[name], direction == "desc"))
            offset += len(item) + 1
        if self.pk not in seen:
            fields.append(OrderField(self.pk, self.pk, False))
        return Ordering(tuple(fields))

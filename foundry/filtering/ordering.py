"""AIP-132 `order_by`: "created_at desc, name" over an allowlist of fields.

NULLs sort last in both directions, and the primary key is always the final tie-breaker, so
every ordering is total — which keyset pagination (pagination.py) relies on. A column that holds
no NULL is ordered plainly (`DESC`, not `DESC NULLS LAST`): an index in its order (PostgreSQL's
`DESC` puts NULLs first) then serves a page without sorting every matching row.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist
from django.db.models import F, Model, OrderBy

from foundry.filtering.errors import FilterError

_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\s+(asc|desc))?\s*$")
MAX_ORDER_LENGTH = 512


@dataclass(frozen=True)
class OrderField:
    name: str
    lookup: str
    descending: bool

    def expression(self, *, nullable: bool = True) -> OrderBy:
        column = F(self.lookup)
        if not nullable:
            return column.desc() if self.descending else column.asc()
        return column.desc(nulls_last=True) if self.descending else column.asc(nulls_last=True)

    def spelled(self) -> str:
        return f"{self.name} desc" if self.descending else self.name


@dataclass(frozen=True)
class Ordering:
    fields: tuple[OrderField, ...]  # the primary key last

    def expressions(self, model: type[Model] | None = None) -> list[OrderBy]:
        return [f.expression(nullable=model is None or nullable(model, f.lookup)) for f in self.fields]

    def canonical(self) -> str:
        return ", ".join(f.spelled() for f in self.fields)


def nullable(model: type[Model], lookup: str) -> bool:
    """Whether `lookup` (`project__name`) may be NULL on a row of `model`: a nullable column, or
    one reached through a nullable relation. Not a field of the model (an annotation): assumed so."""
    for part in lookup.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return True
        if field.null or field.many_to_many or field.one_to_many or (field.is_relation and field.auto_created):
            return True
        model = field.related_model if field.is_relation else model
    return False


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

"""Google AIP-160 filtering, AIP-132 ordering and AIP-158 page tokens.

    spec = FilterSpec({"name": StringField(), "created_at": TimestampField()})
    compiled = spec.compile('name = "inv*" AND created_at > "2026-01-01T00:00:00Z"')
    Model.objects.filter(compiled.q)        # in PostgreSQL
    compiled.matches({"name": "invoice"})   # over a plain dict

Errors are FilterError with a stable `code` and a 0-based `position`.
"""

from foundry.filtering.compiler import CompiledFilter, FilterSpec
from foundry.filtering.errors import FilterError
from foundry.filtering.fields import (
    BooleanField,
    DateField,
    DecimalField,
    DurationField,
    EnumField,
    Field,
    IntegerField,
    ListField,
    MapField,
    StringField,
    TimestampField,
)

__all__ = [
    "BooleanField",
    "CompiledFilter",
    "DateField",
    "DecimalField",
    "DurationField",
    "EnumField",
    "Field",
    "FilterError",
    "FilterSpec",
    "IntegerField",
    "ListField",
    "MapField",
    "StringField",
    "TimestampField",
]

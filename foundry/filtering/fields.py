"""Filterable field declarations: what a resource lets clients filter on, and how values coerce.

Each field turns a literal from the filter into a typed Python value (or refuses it), and knows
which comparators make sense for its type.
"""

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from foundry.filtering.errors import FilterError
from foundry.filtering.parser import Literal

ORDERED = frozenset({"=", "!=", "<", "<=", ">", ">=", ":"})
EQUALITY = frozenset({"=", "!=", ":"})
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms|us)", re.ASCII)


def _mismatch(literal: Literal, expected: str) -> FilterError:
    return FilterError("invalid_value", f"{literal.text!r} is not {expected}.", literal.pos)


@dataclass(frozen=True)
class Field(ABC):
    """Base declaration. `lookup` is the Django field path (default: the name, dots → __)."""

    lookup: str | None = None
    nullable: bool = False
    operators: frozenset[str] = field(default=ORDERED)
    type_name: str = "value"

    @abstractmethod
    def coerce(self, literal: Literal):
        """The literal as a value of this field's type, or FilterError `invalid_value`."""


@dataclass(frozen=True)
class StringField(Field):
    type_name: str = "string"

    def coerce(self, literal: Literal) -> str:
        return literal.text


@dataclass(frozen=True)
class IntegerField(Field):
    type_name: str = "integer"

    def coerce(self, literal: Literal) -> int:
        if not re.fullmatch(r"-?\d{1,18}", literal.text, re.ASCII):  # ASCII: `\d` takes other scripts' digits too
            raise _mismatch(literal, "an integer")
        return int(literal.text)


@dataclass(frozen=True)
class DecimalField(Field):
    type_name: str = "number"

    def coerce(self, literal: Literal) -> Decimal:
        # Written as JSON writes a number, in ASCII: Decimal() also takes other scripts' digits,
        # spaces around, `_` between digits, "Infinity" and "NaN".
        if not _NUMBER.fullmatch(literal.text):
            raise _mismatch(literal, "a number")
        try:
            value = Decimal(literal.text)
        except InvalidOperation:
            raise _mismatch(literal, "a number") from None
        if not value.is_finite() or abs(value.adjusted()) > 30:
            raise _mismatch(literal, "a number in range")
        return value


@dataclass(frozen=True)
class BooleanField(Field):
    operators: frozenset[str] = EQUALITY
    type_name: str = "boolean"

    def coerce(self, literal: Literal) -> bool:
        if literal.text in ("true", "false"):
            return literal.text == "true"
        raise _mismatch(literal, "true or false")


@dataclass(frozen=True)
class TimestampField(Field):
    type_name: str = "timestamp"

    def coerce(self, literal: Literal) -> datetime:
        text = literal.text
        if not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)", text, re.ASCII):
            raise _mismatch(literal, 'an RFC 3339 timestamp such as "2026-01-31T12:00:00Z"')
        text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("z", "Z").replace("t", "T")  # see between()
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        except (ValueError, OverflowError):  # OverflowError: beyond years 1-9999 once in UTC
            raise _mismatch(literal, "a valid date and time") from None

    @staticmethod
    def between(literal: Literal) -> bool:
        """Whether the time written falls between two microseconds (`.0000001`): `coerce` gives
        the microsecond before it, which a comparison must take into account."""
        digits = re.search(r"\.\d{6}(\d+)", literal.text)
        return digits is not None and digits.group(1).strip("0") != ""


@dataclass(frozen=True)
class DateField(Field):
    type_name: str = "date"

    def coerce(self, literal: Literal) -> date:
        try:
            if re.fullmatch(r"\d{4}-\d\d-\d\d", literal.text, re.ASCII):
                return date.fromisoformat(literal.text)
        except ValueError:
            pass
        raise _mismatch(literal, 'a date such as "2026-01-31"')


@dataclass(frozen=True)
class DurationField(Field):
    type_name: str = "duration"

    def coerce(self, literal: Literal) -> timedelta:
        text = literal.text
        if not text or len(text) > 40 or _DURATION_PART.sub("", text):  # long first: the pattern is quadratic in digits
            raise _mismatch(literal, 'a duration such as "90s" or "1h30m"')
        units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
        seconds = sum(Decimal(n) * Decimal(str(units[u])) for n, u in _DURATION_PART.findall(text))
        if seconds > 10**9:
            raise _mismatch(literal, "a duration in range")
        return timedelta(seconds=float(seconds))


@dataclass(frozen=True)
class EnumField(Field):
    choices: tuple[str, ...] = ()
    operators: frozenset[str] = EQUALITY
    type_name: str = "enum"

    def coerce(self, literal: Literal) -> str:
        if literal.text not in self.choices:
            raise _mismatch(literal, "one of " + ", ".join(self.choices))
        return literal.text


@dataclass(frozen=True)
class ListField(Field):
    """A repeated field (PostgreSQL array): `tags:urgent` is membership."""

    item: Field = StringField()
    operators: frozenset[str] = frozenset({":"})
    type_name: str = "list"

    def coerce(self, literal: Literal):
        return self.item.coerce(literal)


@dataclass(frozen=True)
class MapField(Field):
    """A string → string map (JSON object): `labels.env = "prod"`, `labels:env` (key present)."""

    operators: frozenset[str] = EQUALITY
    type_name: str = "map"

    def coerce(self, literal: Literal) -> str:
        return literal.text

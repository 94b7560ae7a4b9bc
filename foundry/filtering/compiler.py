"""Syntax tree + field declarations → a Django Q and an equivalent Python predicate.

The same compiled filter selects rows in PostgreSQL (`.q`) and decides over plain dicts
(`.matches`), so DIS business rules and API lists share one meaning. Values only ever reach
SQL as query parameters: the Q is built from declared lookups, never from the client's text.

The Q is built, and Django's ORM imported, when `.q` is first read: `forge` checks documents'
rules offline with this compiler (the ORM was a fifth of its start), and the runtime decides
rules with `.matches` alone.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial
from typing import TYPE_CHECKING

from foundry.filtering.errors import FilterError
from foundry.filtering.fields import Field, ListField, MapField, StringField, TimestampField
from foundry.filtering.parser import And, Call, Composite, Literal, Member, Not, Or, Restriction, parse

if TYPE_CHECKING:
    from django.db.models import Q

Predicate = Callable[[Mapping], bool]
# A resource-declared function: (arguments, position) -> (Q, predicate).
Function = Callable[[tuple, int], "tuple[Q, Predicate]"]

_MISSING = object()
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_LOOKUP = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


class Deferred:
    """A Q, built when first asked for (`build()`), then kept: the closures that build it are let
    go, so a cached filter whose Q was read holds its Q, not also the tree that made it. Combined
    with &, | and ~ like a Q."""

    __slots__ = ("_make", "_q")

    def __init__(self, make: Callable[[], Q]):
        self._make, self._q = make, None

    def build(self) -> Q:
        make = self._make
        if make is not None:  # threads racing here each build an equal Q; one is kept
            self._q = make()
            self._make = None  # after _q is set: a thread that reads None finds the Q
        return self._q

    @classmethod
    def q(cls, *args, **kwargs) -> Deferred:
        """`Q(*args, **kwargs)`, later."""

        def make():
            from django.db.models import Q

            return Q(*args, **kwargs)

        return cls(make)

    def __and__(self, other: Deferred) -> Deferred:
        return Deferred(lambda: self.build() & other.build())

    def __or__(self, other: Deferred) -> Deferred:
        return Deferred(lambda: self.build() | other.build())

    def __invert__(self) -> Deferred:
        return Deferred(lambda: ~self.build())


@dataclass(frozen=True)
class CompiledFilter:
    text: str
    deferred: Deferred
    matches: Predicate

    @property
    def q(self) -> Q:
        return self.deferred.build()


def _dig(record: Mapping, path: tuple[str, ...]):
    value = record
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _present(value) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | tuple | dict | frozenset | set):
        return len(value) > 0
    return True


def _joined(arg: Member) -> Literal:
    """A value written with dots (`gpt-4.1-*`, `*@acme.test`) is one literal, its parts' wildcards kept."""
    if len(arg.parts) == 1:
        return arg.parts[0]
    stars, offset = [], 0
    for part in arg.parts:
        stars.extend(offset + star for star in part.stars)
        offset += len(part.text) + 1
    return Literal(arg.path, False, arg.pos, tuple(stars))


def _wildcard(literal: Literal) -> tuple[str, Callable[[str], bool]] | None:
    """A wildcard literal (`*` for any text) as the SQL regex PostgreSQL matches and the matcher
    the same filter uses in Python (a rule's check of a tool call's arguments). The matcher is no
    backtracking regex: `.*a.*a.*…c` takes exponential time there, and the text it is matched
    against may be a model's (a prompt-injected argument could hold a run's worker for minutes).
    Stars in a row are one star: PostgreSQL takes seconds to compile hundreds of `.*` in a row
    (41 s for 1,000 on a one-row table), and refuses 2,000 as too complex."""
    if not literal.stars:
        return None
    pieces = wildcard_pieces(literal)
    return "^" + ".*".join(re.escape(piece) for piece in pieces) + "$", partial(_glob_match, pieces)


def wildcard_pieces(literal: Literal) -> tuple[str, ...]:
    """The texts between a wildcard literal's stars (`a*b` → a, b; `*a` → "", a), stars in a row
    taken as one (no empty piece between them)."""
    pieces, last = [], 0
    for star in literal.stars:
        pieces.append(literal.text[last:star])
        last = star + 1
    pieces.append(literal.text[last:])
    return (pieces[0], *(piece for piece in pieces[1:-1] if piece), pieces[-1])


def _glob_match(pieces: tuple[str, ...], value: str) -> bool:
    """Whether `value` is pieces[0], then anything, then pieces[1] … then anything, then
    pieces[-1]. Each middle piece is taken where it first occurs after the one before (the
    leftmost place never loses a match), so the time is linear in the value."""
    first, *middle, final = pieces
    if not value.startswith(first) or not value.endswith(final):
        return False
    position, end = len(first), len(value) - len(final)
    if end < position:
        return False
    for piece in middle:
        found = value.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


# The longest filter text a spec keeps compiled: a compiled filter takes ~50x its text (Q objects
# and closures: ~150 KiB for 4 KB of ORs), so 1,024 of them at the most a request may send would
# keep ~200 MiB per spec in every process. Longer ones are compiled at each use.
MAX_CACHED_CHARS = 256
# The fields an unknown field's error names, at most (the rest are counted).
MAX_FIELDS_SHOWN = 40


class FilterSpec:
    """What one resource lets clients filter on. Compiled filters (short ones) are cached per spec."""

    def __init__(
        self,
        fields: Mapping[str, Field],
        *,
        functions: Mapping[str, Function] | None = None,
        search_fields: tuple[str, ...] = (),
        cache_size: int = 1024,
    ):
        self.fields = dict(fields)
        # Per field: the Django lookup, and the key path into a plain-dict record.
        self._columns = {
            name: (field.lookup or name.replace(".", "__"), tuple(name.split("."))) for name, field in fields.items()
        }
        self.functions = dict(functions or {})
        self.search_fields = search_fields
        self._cached = lru_cache(maxsize=cache_size)(self._compile)
        self.cache_info = self._cached.cache_info

    def compile(self, text: str) -> CompiledFilter:
        """`text` compiled (FilterError if it is no filter of this spec), from the cache if short."""
        return self._cached(text) if len(text) <= MAX_CACHED_CHARS else self._compile(text)

    def compile_uncached(self, text: str) -> CompiledFilter:
        """`text` compiled and not kept: for text no one bounds in number (a model's tool call)."""
        return self._compile(text)

    def describe(self, limit: int | None = None) -> str:
        """The filterable fields with their types, the first `limit` of them by name if given."""
        names = sorted(self.fields)
        shown = ", ".join(f"{name} ({self.fields[name].type_name})" for name in names[:limit])
        if limit is not None and len(names) > limit:
            shown += f", and {len(names) - limit:,} more"
        return shown

    @cached_property
    def _fields_shown(self) -> str:
        # Built once: a DIS entity may declare hundreds of fields, and a document as many rules
        # each naming one it lacks; every such error listed them all, built anew.
        return self.describe(MAX_FIELDS_SHOWN)

    # --- compile ---------------------------------------------------------------------------
    def _compile(self, text: str) -> CompiledFilter:
        node = parse(text)
        if node is None:
            return CompiledFilter(text, Deferred.q(), lambda record: True)
        q, predicate = self._node(node)
        return CompiledFilter(text, q, predicate)

    def _node(self, node) -> tuple[Deferred, Predicate]:
        if type(node) is Restriction:
            return self._restriction(node)
        if isinstance(node, And):
            (lq, lp), (rq, rp) = self._node(node.left), self._node(node.right)
            return lq & rq, lambda r: lp(r) and rp(r)
        if isinstance(node, Or):
            (lq, lp), (rq, rp) = self._node(node.left), self._node(node.right)
            return lq | rq, lambda r: lp(r) or rp(r)
        if isinstance(node, Not):
            q, p = self._node(node.child)
            return ~q, lambda r: not p(r)
        if isinstance(node, Composite):
            return self._node(node.expression)
        return self._restriction(node)

    def _restriction(self, node: Restriction) -> tuple[Deferred, Predicate]:
        if isinstance(node.comparable, Call):
            if node.op is not None:
                raise FilterError("unsupported_operator", "A function call cannot be compared.", node.pos)
            return self._call(node.comparable)
        if node.op is None:
            return self._search(node.comparable)
        name, field, key = self._field(node.comparable)
        if node.op not in field.operators:
            allowed = " ".join(sorted(field.operators))
            raise FilterError(
                "unsupported_operator",
                f"{name!r} ({field.type_name}) does not support {node.op!r}; use one of: {allowed}.",
                node.pos,
            )
        if isinstance(node.arg, Composite):
            return self._distribute(node, node.arg.expression)
        if not isinstance(node.arg, Member):
            raise FilterError("invalid_value", "Compare a field with a value.", node.pos)
        return self._compare(name, field, key, node.op, node.arg, node.pos)

    def _distribute(self, node: Restriction, expression) -> tuple[Deferred, Predicate]:
        """`a = (x OR y)` means `a = x OR a = y`."""

        def rewrite(n):
            if isinstance(n, And):
                return And(rewrite(n.left), rewrite(n.right))
            if isinstance(n, Or):
                return Or(rewrite(n.left), rewrite(n.right))
            if isinstance(n, Not):
                return Not(rewrite(n.child), n.pos)
            if isinstance(n, Composite):
                return rewrite(n.expression)
            if isinstance(n, Restriction) and n.op is None and isinstance(n.comparable, Member):
                return Restriction(node.comparable, node.op, n.comparable, n.pos)
            raise FilterError("invalid_value", "Inside ( ) after a comparator, give only values.", n.pos)

        return self._node(rewrite(expression))

    def _field(self, member: Member) -> tuple[str, Field, str | None]:
        parts = [p.text for p in member.parts]
        for cut in range(len(parts), 0, -1):
            name = ".".join(parts[:cut])
            field = self.fields.get(name)
            if field is None:
                continue
            rest = parts[cut:]
            if not rest:
                return name, field, None
            if isinstance(field, MapField) and len(rest) == 1 and 0 < len(rest[0]) <= 128:
                return name, field, rest[0]
            break
        raise FilterError(
            "unknown_field",
            f"Unknown field {member.path!r}. Filterable fields: {self._fields_shown}.",
            member.pos,
        )

    # --- comparisons -----------------------------------------------------------------------
    def _compare(
        self, name: str, field: Field, key: str | None, op: str, arg: Member, pos: int
    ) -> tuple[Deferred, Predicate]:
        lookup, path = self._columns[name]
        literal = _joined(arg)
        if isinstance(field, MapField):
            return self._map(lookup, path, key, op, literal, pos)
        if op == ":" and literal.text == "*" and not literal.quoted:
            return self._presence(field, lookup, path)
        if isinstance(field, ListField):
            value = field.coerce(literal)
            return Deferred.q((f"{lookup}__contains", [value])), lambda r: value in (_dig(r, path) or ())
        if literal.text == "null" and not literal.quoted and op in ("=", "!="):
            q, p = Deferred.q((f"{lookup}__isnull", True)), (lambda r: _dig(r, path) is None)
            return (q, p) if op == "=" else (~q, lambda r: not p(r))
        if op in ("=", "!=", ":"):
            wildcard = _wildcard(literal) if isinstance(field, StringField) else None
            if wildcard:
                sql_regex, matches = wildcard
                q = Deferred.q((f"{lookup}__regex", sql_regex))

                def p(r):
                    v = _dig(r, path)
                    return isinstance(v, str) and matches(v)
            elif isinstance(field, TimestampField) and field.between(literal):
                q, p = Deferred.q(pk__in=[]), (lambda r: False)  # an instant no time kept (to the microsecond) is
            else:
                value = field.coerce(literal)
                q = Deferred.q((lookup, value))

                def p(r):
                    return _dig(r, path) == value

            return (q, p) if op != "!=" else (~q, lambda r: not p(r))
        value = field.coerce(literal)
        if isinstance(field, TimestampField) and field.between(literal):
            # coerce cut it to the microsecond before it: below the instant is at or below that
            # microsecond, and at or above it past that microsecond (adding one overflowed at
            # the end of year 9999).
            op = {"<": "<=", ">=": ">"}.get(op, op)
        compare = _COMPARE[op]

        def ordered(r):
            v = _dig(r, path)
            return v is not None and compare(v, value)

        return Deferred.q((f"{lookup}__{_LOOKUP[op]}", value)), ordered

    @staticmethod
    def _presence(field: Field, lookup: str, path: tuple[str, ...]) -> tuple[Deferred, Predicate]:
        if isinstance(field, ListField):
            q = Deferred.q((f"{lookup}__len__gt", 0))
        elif isinstance(field, StringField):
            q = Deferred.q((f"{lookup}__isnull", False)) & ~Deferred.q((lookup, ""))
        else:
            q = Deferred.q((f"{lookup}__isnull", False))
        return q, lambda r: _present(_dig(r, path))

    @staticmethod
    def _map(
        lookup: str, path: tuple[str, ...], key: str | None, op: str, literal: Literal, pos: int
    ) -> tuple[Deferred, Predicate]:
        if key is None:  # labels:env — the key is present
            if op != ":":
                raise FilterError("unsupported_operator", "Compare a map entry, e.g. labels.env = prod.", pos)
            name = literal.text
            return _has_key(lookup, name), lambda r: name in (_dig(r, path) or {})
        has = _has_key(lookup, key)
        if op == ":" and literal.text == "*" and not literal.quoted:
            return has, lambda r: key in (_dig(r, path) or {})
        value = literal.text
        equal = has & _key_equals(lookup, key, value)

        def p(r):
            entry = (_dig(r, path) or {}).get(key, _MISSING)
            return entry == value

        return (equal, p) if op != "!=" else (~equal, lambda r: not p(r))

    def _search(self, member: Member) -> tuple[Deferred, Predicate]:
        if not self.search_fields:
            raise FilterError(
                "bare_value", f"{member.path!r} needs a field to compare with, e.g. name = {member.path!r}.", member.pos
            )
        needle = member.path
        q = Deferred.q()
        for name in self.search_fields:
            q |= Deferred.q((f"{name.replace('.', '__')}__icontains", needle))

        def p(r):
            return any(needle.lower() in str(_dig(r, tuple(n.split("."))) or "").lower() for n in self.search_fields)

        return q, p

    def _call(self, call: Call) -> tuple[Deferred, Predicate]:
        name = call.name
        function = self.functions.get(name)
        if function is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise FilterError("unknown_function", f"Unknown function {name!r} (available: {known}).", call.pos)
        q, predicate = function(call.args, call.pos)
        return Deferred(lambda: q), predicate


def _has_key(lookup: str, key: str) -> Deferred:
    def make():
        from django.db.models import F, Q
        from django.db.models.fields.json import HasKey

        return Q(HasKey(F(lookup), key))

    return Deferred(make)


def _key_equals(lookup: str, key: str, value: str) -> Deferred:
    def make():
        from django.db.models import Q, Value
        from django.db.models.fields.json import KeyTextTransform
        from django.db.models.lookups import Exact

        return Q(Exact(KeyTextTransform(key, lookup), Value(value)))

    return Deferred(make)

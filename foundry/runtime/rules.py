"""DIS business rules applied to tool calls.

A rule on entity E applies to every call of a tool whose `entity` is E. The call's arguments
that name fields of E are typed with the same AIP-160 field declarations the rule was
validated against (`entity_filters`), so `amount > 10000` compares decimals whether the model
sent `12000`, `12000.5` or `"12000"`; an argument that is not a value of its field's type is
refused before any rule runs (the model sees why). Arguments that are not fields of E are not
part of the record the rules see.

`deny` blocks the call, `require_approval` asks a human first, `warn` records a warning.
"""

import functools
import hashlib
import itertools
import json
import math
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from foundry.filtering import CompiledFilter, FilterError, FilterSpec, ListField
from foundry.filtering.compiler import _glob_match, _joined, wildcard_pieces
from foundry.filtering.fields import StringField, TimestampField
from foundry.filtering.parser import And, Composite, Literal, Member, Not, Or, Restriction, parse
from foundry.manifests.names import name_fold
from foundry.manifests.validation import entity_filters
from foundry.runtime.collation import IGNORED_RANGES

# The approval a run waits for when its budget is spent names this in place of a tool (here, not
# in graph.py, so the web process's approval check does not load LangGraph).
OVERAGE_TOOL = "(overage)"  # no tool can be named so (a manifest's tool names are identifiers)

ACTIONS = ("deny", "require_approval", "warn")


class ArgumentError(ValueError):
    """A tool-call argument that is not a value of its entity field's type."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Rule:
    name: str
    entity: str
    when: str
    then: str
    message: str
    compiled: CompiledFilter

    def explain(self) -> str:
        return f"rule {self.name!r}: {self.message}" if self.message else f"rule {self.name!r} ({self.when})"


@dataclass
class Verdict:
    """What the rules say about one call."""

    denied: list[Rule] = field(default_factory=list)
    approval: list[Rule] = field(default_factory=list)
    warnings: list[Rule] = field(default_factory=list)


def _literal_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise TypeError


# The largest integer every JSON reader keeps exactly (JavaScript's numbers are doubles).
_EXACT_INTEGER = 2**53


def _text_spelling(name: str, value) -> None:
    """A number for a text field (string, reference) is read as text by whoever it is sent to, and
    not always as Python spells it: 1e4 arrives as 10000.0, which JavaScript's String() and a SQL
    text comparison read as "10000" — a rule comparing the field with "10000" let it by. Only an
    integer every reader spells alike is taken; another number is refused (write it as text)."""
    if isinstance(value, float) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) > _EXACT_INTEGER
    ):
        raise ArgumentError(f"Argument {name!r} is text: write {value!r} as a JSON string, as it is meant.")


_NOTATION = re.compile(r"[\[\].]+")
# Values of one argument times the wildcards rules compare its field with, checked at most per call;
# and its characters times those wildcards (each may scan the whole text).
MAX_WILDCARD_CHECKS = 1_000_000
MAX_WILDCARD_SCAN = 200_000_000
# Records a call's arguments are checked as, one per choice of the rules' spellings of its texts.
MAX_SPELLING_VARIANTS = 64


def _parts(name: str) -> list[str]:
    """The name; as PHP's query parser reads it (up to a NUL, as a C string; `.` and an unclosed
    `[` as `_`, which folding drops); and the names inside its bracket or dot notation
    (`invoice[amount]`: invoice, amount)."""
    head = name.split("\x00", 1)[0]
    return [name, head, head.replace(".", "_").replace("[", "_"), *(part for part in _NOTATION.split(head) if part)]


def folded_names(names) -> dict[str, str]:
    """{folded name: name} of `names`, for `read_as`."""
    return {name_fold(name): name for name in names}


def read_as(name, folded: Mapping[str, str]) -> str | None:
    """Which of the names `folded` (from `folded_names`) a lenient server may read `name` as:
    another case or spacing of it, a look-alike, or one of the names inside its bracket or dot
    notation (`amount[]`, `invoice[amount]`, `invoice.amount`: PHP's, Rack's, Express's query
    parsers); None when none."""
    if not isinstance(name, str):
        return None
    return next((folded[f] for part in _parts(name) if (f := name_fold(part)) in folded), None)


def _restrictions(node) -> Iterator[Restriction]:
    """Every comparison of a parsed filter, without recursion."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Restriction):
            yield item
        elif isinstance(item, And | Or):
            stack += [item.left, item.right]
        elif isinstance(item, Not):
            stack.append(item.child)
        elif isinstance(item, Composite):
            stack.append(item.expression)


def _read_fields(node) -> Iterator[str]:
    """The fields a parsed filter compares (the first name of each comparison's member)."""
    for item in _restrictions(node):
        if isinstance(item.comparable, Member) and item.comparable.parts:
            yield item.comparable.parts[0].text


def _compared_texts(node) -> Iterator[tuple[str, Literal]]:
    """(field, value) of each comparison of a field with a value in a parsed filter, in whichever
    form it is written: `country = "IR"`, `name = acme.example` (a value of two parts, one text),
    `country = ("IR" OR "KP")` (each value of the shorthand); wildcards kept in the value."""
    for item in _restrictions(node):
        compared, arg = item.comparable, item.arg
        if not (isinstance(compared, Member) and compared.parts) or item.op is None:
            continue
        values = [arg] if isinstance(arg, Member) else []
        if isinstance(arg, Composite):  # the shorthand's values: comparisons without a comparator
            values = [n.comparable for n in _restrictions(arg) if n.op is None and isinstance(n.comparable, Member)]
        for value in values:
            if value.parts:
                yield compared.parts[0].text, _joined(value)


def _fold_value(text: str) -> str:
    """A text value as lenient servers may compare it: compatibility forms made plain (NFKC:
    fullwidth letters are ASCII), without case, invisible format and control characters or
    accents (as accent-insensitive collations read it: "I\u200bR" and "ÍR" are "IR"), without
    spaces at either end (PAD SPACE)."""
    return _fold_piece(text).strip()


def _fold_piece(text: str) -> str:
    """A piece of a wildcard as `_fold_value` folds a value, its spaces kept (they sit between stars).
    What a collation passes over goes before the case (U+0345, a combining mark, uppercases to the
    letter U+0399) and after it (U+0130 casefolds to i and a combining dot)."""
    if not text.isascii():
        text = text.translate(_ignored_table())
    plain = unicodedata.normalize("NFKC", text).translate(_unseen_table())
    if plain.isascii():
        return plain.upper().casefold()
    bare = unicodedata.normalize("NFD", plain).translate(_ignored_table())
    folded = unicodedata.normalize("NFD", bare.upper().casefold())
    return folded.translate(_ignored_table()) if not folded.isascii() else folded


def _table(categories: tuple[str, ...]) -> dict[int, None]:
    """A str.translate table dropping the characters of `categories` (in the planes that have any)."""
    planes = (*range(0x20000), *range(0xE0000, 0xE1000))
    return {cp: None for cp in planes if unicodedata.category(chr(cp)) in categories}


@functools.cache
def _unseen_table() -> dict[int, None]:
    return _table(("Cf", "Cc"))  # kept: none but tabs and line breaks at a value's ends, stripped anyway


@functools.cache
def _ignored_table() -> dict[int, None]:
    """What an accent- and case-insensitive collation passes over (collation.py): its marks (the
    accents; not the Indic vowel signs, which weigh as letters), the tatweel, the presentation
    forms of Arabic marks, invisible and control characters."""
    return {cp: None for first, last in IGNORED_RANGES for cp in range(first, last + 1)}


def _argument(name: str, declared, literal: Literal):
    """An argument's value as its field's type holds it. A time between two microseconds
    (`.0000001`) is refused: held as the microsecond before it, it would compare as earlier than
    it is, and a rule on a later time let it through."""
    if isinstance(declared, TimestampField) and TimestampField.between(literal):
        raise ArgumentError(f"Argument {name!r}: a time is given to the microsecond at most (6 decimal places).")
    return declared.coerce(literal)


def _nested_keys(value) -> Iterator[str]:
    """The keys of every object inside `value` (a JSON value), at any depth, without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            yield from (key for key in item if isinstance(key, str))
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


class RuleBook:
    """The rules of one DIS, compiled once per run, grouped by entity."""

    def __init__(self, domain: Mapping):
        spec = domain.get("spec") or {}
        self.entities: dict[str, Mapping] = dict(spec.get("entities") or {})
        self.filters: dict[str, FilterSpec] = {name: entity_filters(e) for name, e in self.entities.items()}
        self.rules: dict[str, list[Rule]] = {}
        # {entity: {folded field name: field}} of the fields its rules compare.
        self.read: dict[str, dict[str, str]] = {}
        # {entity: {field: {folded text: [texts]}}} of the texts its rules compare fields with: more
        # than one where rules spell alike texts differently ("São Paulo" and "Sao Paulo").
        self.spellings: dict[str, dict[str, dict[str, list[str]]]] = {}
        # {entity: {field: [(pattern, its pieces, folded)]}} of the wildcards its rules compare fields with.
        self.patterns: dict[str, dict[str, list[tuple[str, tuple[str, ...], tuple[str, ...]]]]] = {}
        # Each distinct condition compiled and read once: YAML aliases repeat one long condition at
        # no cost to the document's size (filters over 256 characters are not kept compiled).
        compiled_as: dict[tuple[str, str], CompiledFilter] = {}
        for rule in spec.get("rules") or ():
            entity = rule["entity"]
            if entity not in self.filters:
                raise ValueError(f"Rule {rule['name']!r} is on unknown entity {entity!r}.")
            compiled = compiled_as.get((entity, rule["when"]))
            repeated = compiled is not None
            if not repeated:
                try:
                    compiled = compiled_as[entity, rule["when"]] = self.filters[entity].compile(rule["when"])
                except FilterError as exc:
                    raise ValueError(f"Rule {rule['name']!r} does not compile: {exc.message}") from exc
            self.rules.setdefault(entity, []).append(
                Rule(rule["name"], entity, rule["when"], rule["then"], rule.get("message") or "", compiled)
            )
            if repeated:
                continue  # what it reads and compares is noted already
            fields = self.filters[entity].fields
            parsed = parse(rule["when"])
            read = [name for name in _read_fields(parsed) if name in fields]
            self.read.setdefault(entity, {}).update(folded_names(read))
            for name, value in _compared_texts(parsed):
                if name not in fields:
                    continue
                if not value.stars:
                    texts = self.spellings.setdefault(entity, {}).setdefault(name, {})
                    alike = texts.setdefault(_fold_value(value.text), [])
                    if value.text not in alike:
                        alike.append(value.text)
                    continue
                pieces = wildcard_pieces(value)
                folded = tuple(_fold_piece(piece) for piece in pieces)
                self.patterns.setdefault(entity, {}).setdefault(name, []).append((value.text, pieces, folded))

    def record(self, entity: str, arguments: Mapping) -> dict:
        """The arguments that are fields of `entity`, typed; ArgumentError for a wrong value."""
        fields = self.filters[entity].fields
        folded = folded_names(fields)
        record = {}
        for name, value in arguments.items():
            declared = fields.get(name)
            if declared is None:
                # `Amount`, `amount `, `due-date` for `due_date`: a server may read it as the field
                # (many match names ignoring case), which the rules would not have seen; so may
                # it `amount[]`, `invoice[amount]`, `invoice.amount` (read_as).
                alike = read_as(name, folded)
                if alike is not None:
                    raise ArgumentError(f"Argument {name!r}: the field is spelt {alike!r}.")
                # `{"invoice": {"amount": …}}` in a JSON body is that same bracket notation to the
                # servers that read `invoice[amount]` as the field (Rails' params, Rack): refused
                # for the fields a rule compares (any other object may name its own `name`).
                read = self.read.get(entity)
                inside = next((f for key in _nested_keys(value) if (f := read_as(key, read))), None) if read else None
                if inside is not None:
                    raise ArgumentError(f"Argument {name!r} holds the field {inside!r}: pass it as {inside!r} itself.")
                continue
            record[name] = None if value is None else self._spelt(entity, name, self._coerce(name, declared, value))
        return record

    def _spelt(self, entity: str, name: str, value):
        """`value`, checked against the wildcards the rules compare it with. A text (or a list's)
        that a lenient server reads as matching a rule's wildcard (`sanctioned ltd` for
        `name = "Sanctioned*"`: a case-insensitive, PAD SPACE collation; an NFKC-normalising
        service) that the wildcard does not match as written is refused (ArgumentError): no one
        text stands for all the wildcard matches. Texts the rules spell exactly are read both ways
        by `variants`."""
        patterns = self.patterns.get(entity, {}).get(name) or ()
        if not patterns:
            return value
        texts = [v for v in value if isinstance(v, str)] if isinstance(value, list) else [value]
        values, characters = len(texts), sum(len(t) for t in texts if isinstance(t, str))
        if values * len(patterns) > MAX_WILDCARD_CHECKS or characters * len(patterns) > MAX_WILDCARD_SCAN:
            # A domain may hold tens of thousands of wildcards on a field, and a call a list of
            # millions of values or a text of megabytes, each wildcard scanning it: the worker's
            # time, shared by every workspace, is bounded here.
            raise ArgumentError(
                f"Argument {name!r}: {values:,} values ({characters:,} characters) against the {len(patterns):,} "
                "wildcards the rules compare it with are more than the rules are checked for; pass less."
            )

        def spelt(text):
            if not isinstance(text, str):
                return text
            folded_text = _fold_value(text)
            for pattern, pieces, folded in patterns:
                # Read as matching once folded (rare), then refused unless it matches as written.
                if _glob_match(folded, folded_text) and not _glob_match(pieces, text):
                    raise ArgumentError(
                        f"Argument {name!r}: {text!r} reads as matching {pattern!r}, which a rule compares it with; "
                        "spell it as the rule does."
                    )
            return text

        if isinstance(value, list):
            return [spelt(v) for v in value]
        return spelt(value)

    def variants(self, entity: str, record: dict) -> list[dict]:
        """`record` as each reading of its texts: as written, and as each spelling the rules give a
        text that folds alike — `ir`, `IR `, fullwidth `IR` (U+FF29 U+FF32) for `country = "IR"`. A lenient
        server (a case-insensitive, PAD SPACE collation; an NFKC-normalising service) reads the
        text as every one of those spellings, a strict one as written, so a rule matching any
        reading applies: `deny` on "São Paulo Trading" is not escaped by a `warn` on "Sao Paulo
        Trading", nor `id != "V-1"` by `v-1`. A list holds all of its texts' readings at once."""
        fields = self.spellings.get(entity) or {}
        choices: list[tuple[str, list[str]]] = []
        record = dict(record)
        for name, value in record.items():
            spellings = fields.get(name)
            if isinstance(value, list):
                # A set: a rule's `tags:"x"` asks whether it holds x, in one look however long the
                # list (a scan of it for each comparison of each rule, in each reading, was not bounded).
                items = (spelt for item in value for spelt in self._alike(spellings, item)) if spellings else value
                record[name] = frozenset(items)
            elif spellings and len(alike := self._alike(spellings, value)) > 1:
                choices.append((name, alike))
        if math.prod(len(alike) for _, alike in choices) > MAX_SPELLING_VARIANTS:
            raise ArgumentError(
                f"Arguments {', '.join(repr(n) for n, _ in choices)}: the rules spell their texts in too many ways "
                "to check them all; spell them as one rule does."
            )
        return [
            record | dict(zip((n for n, _ in choices), picked, strict=True))
            for picked in itertools.product(*(alike for _, alike in choices))
        ]

    @staticmethod
    def _alike(spellings: dict[str, list[str]], value) -> list:
        """`value` as written, then the spellings the rules give it."""
        if not isinstance(value, str):
            return [value]
        return [value, *(spelt for spelt in spellings.get(_fold_value(value), ()) if spelt != value)]

    @staticmethod
    def _coerce(name: str, declared, value):
        try:
            if isinstance(declared, ListField):
                if not isinstance(value, list):
                    raise ArgumentError(f"Argument {name!r} must be a list.")
                if isinstance(declared.item, StringField):
                    for v in value:
                        _text_spelling(name, v)
                return [_argument(name, declared.item, Literal(_literal_text(v), True, 0)) for v in value]
            if isinstance(declared, StringField):
                _text_spelling(name, value)
            return _argument(name, declared, Literal(_literal_text(value), True, 0))
        except FilterError as exc:
            raise ArgumentError(f"Argument {name!r}: {exc.message}") from None
        except TypeError:
            raise ArgumentError(f"Argument {name!r} must be a single {declared.type_name} value.") from None

    def review(self, entity: str | None, arguments: Mapping) -> Verdict:
        """Apply the rules on `entity` to a call's arguments (ArgumentError for a wrongly typed one)."""
        verdict = Verdict()
        if entity is None or entity not in self.filters:
            return verdict
        records = self.variants(entity, self.record(entity, arguments))
        for rule in self.rules.get(entity, ()):
            try:
                matched = any(rule.compiled.matches(record) for record in records)
            except (TypeError, ValueError):
                matched = True  # a rule that cannot be evaluated fails closed
            if matched:
                {"deny": verdict.denied, "require_approval": verdict.approval, "warn": verdict.warnings}[
                    rule.then
                ].append(rule)
        return verdict


# Rule books compiled in this process, by content: the most recently used, up to both bounds.
MAX_BOOKS = 32
MAX_BOOKS_SOURCE = 8 * 1024 * 1024  # characters of their rules and entities, together
_books: OrderedDict[bytes, tuple[RuleBook, int]] = OrderedDict()
_books_lock = threading.Lock()


def rule_book(domain: Mapping) -> RuleBook:
    """The RuleBook of `domain`, compiled once per process for what its entities and rules say
    (a 1 MiB DIS of 22,500 wildcards takes seconds; every run, resumption and re-delivery built
    it again). Keyed by content, never by name: two workspaces' versions of one name never share
    a book unless they say the same. A book is only read once made."""
    spec = domain.get("spec") or {}
    try:
        source = json.dumps(
            [spec.get("entities"), spec.get("rules")], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
    except (TypeError, ValueError):  # not JSON (a YAML date, say): compiled for this use alone
        return RuleBook(domain)
    key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).digest()
    with _books_lock:
        if (cached := _books.get(key)) is not None:
            _books.move_to_end(key)
            return cached[0]
    book = RuleBook(domain)
    with _books_lock:
        _books[key] = (book, len(source))
        while len(_books) > MAX_BOOKS or sum(size for _, size in _books.values()) > MAX_BOOKS_SOURCE:
            if len(_books) == 1:  # one larger than the bound: kept until the next
                break
            _books.popitem(last=False)
    return book

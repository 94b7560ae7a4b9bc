"""Validate Domain (DIS) and Agent documents: safe YAML → JSON Schema → meaning.

One module for the server and the `forge` CLI. Every problem found is reported at once, each
with a stable code, the file, line and column. Semantic checks run even when the schema found
problems (they only look at the parts that have the right shape), so one pass shows everything.
"""

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

import jsonschema_rs

from foundry.filtering import (
    BooleanField,
    DateField,
    DecimalField,
    EnumField,
    FilterError,
    FilterSpec,
    IntegerField,
    ListField,
    StringField,
    TimestampField,
)
from foundry.manifests.loader import Loaded, load
from foundry.manifests.names import name_fold
from foundry.manifests.problems import DocumentError, Problem, pointer

API_VERSION = "foundry/v1"
KINDS = {"Domain": "domain", "Agent": "agent"}
PROVIDERS = ("scripted", "openai", "anthropic")
_MESSAGE_LIMIT = 240
MAX_PROBLEMS = 500  # listed, the first by position; then one `too_many_problems` counts the rest


@cache
def schema(kind: str) -> dict:
    """The published JSON Schema of `kind` ("domain" or "agent")."""
    return json.loads(resources.files("foundry.manifests").joinpath(f"schemas/{kind}.json").read_text())


WHOLE = "x-foundry-whole-number"  # the validator's own keyword, beside every `"type": "integer"`


class _WholeNumber:
    """JSON Schema takes 7.0 for an integer; a manifest's integers are written 7: a float is kept
    as one (jsonb keeps `1000.0`) and reaches where an integer is taken (a provider's
    `max_tokens`, a domain pin)."""

    def __init__(self, parent_schema, value, schema_path):
        pass

    def validate(self, instance):
        if isinstance(instance, float) and instance.is_integer():
            raise ValueError(f"A whole number: write {int(instance)}")


def _marked(node):
    """The schema with WHOLE next to each integer type, so the validator reports whole floats."""
    if isinstance(node, list):
        return [_marked(item) for item in node]
    if not isinstance(node, dict):
        return node
    marked = {key: _marked(value) for key, value in node.items()}
    types = node.get("type")
    if types == "integer" or (isinstance(types, list) and "integer" in types):
        marked[WHOLE] = True
    return marked


def _unnamed(node):
    """The schema without its `propertyNames`, which `_names_problems` checks instead."""
    if isinstance(node, list):
        return [_unnamed(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: _unnamed(value) for key, value in node.items() if key != "propertyNames"}


@cache
def _validator(kind: str):
    """The document's schema, but for its key names: each key a `propertyNames` rule refuses was
    one error carrying a copy of its whole mapping (jsonschema-rs), so a 20 KB document of 2,000
    bad label names took a gigabyte to validate; `_names_problems` checks names one by one."""
    return jsonschema_rs.validator_for(_unnamed(_marked(schema(kind))), keywords={WHOLE: _WholeNumber})


@cache
def _name_rule(text: str):
    return jsonschema_rs.validator_for(json.loads(text))


def _resolved(node, root: dict):
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _names_problems(loaded: Loaded, kind: str) -> list[Problem]:
    """The keys a `propertyNames` rule of the schema refuses, each at its key: the mappings the
    schema reaches through `properties`, `additionalProperties` and `items` (where its rules are)."""
    root = schema(kind)
    problems: list[Problem] = []
    stack = [(loaded.data, root, ())]
    while stack:
        data, node, path = stack.pop()
        node = _resolved(node, root)
        if not isinstance(node, dict):
            continue
        if isinstance(data, dict):
            names = node.get("propertyNames")
            if isinstance(names, dict):
                rule = _name_rule(json.dumps(_resolved(names, root), sort_keys=True))
                where = f" (at {pointer(path)})" if path else ""
                for key in data:
                    if isinstance(key, str) and not rule.is_valid(key):
                        error = next(iter(rule.iter_errors(key)))
                        message = _short(f"Invalid name: {error.message}") + where
                        problems.append(loaded.problem("schema_property_name", message, (*path, key), key=True))
            properties, additional = node.get("properties") or {}, node.get("additionalProperties")
            for key, value in data.items():
                inner = properties.get(key, additional if isinstance(additional, dict) else None)
                if inner is not None:
                    stack.append((value, inner, (*path, key)))
        elif isinstance(data, list) and isinstance(node.get("items"), dict):
            stack.extend((value, node["items"], (*path, index)) for index, value in enumerate(data))
    return problems


def canonical(data) -> str:
    """The canonical JSON text of a document's content: what its SHA-256 is taken of."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(data) -> str:
    return hashlib.sha256(canonical(data).encode()).hexdigest()


@dataclass(frozen=True)
class Resolution:
    """What a domain resolver found for a pin: the DIS content, or a problem code and message."""

    data: dict | None = None
    code: str | None = None
    message: str | None = None
    field: str = "name"  # which part of the pin is at fault: "name" or "version"


# (domain name, version) -> Resolution. The server looks in the database; the CLI in the files given.
DomainResolver = Callable[[str, int], Resolution]


@dataclass
class Validated:
    """The outcome: the kind and name when known, the parsed document, and every problem."""

    file: str
    kind: str | None = None
    name: str | None = None
    loaded: Loaded | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def data(self) -> dict | None:
        return self.loaded.data if self.loaded else None

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "kind": self.kind,
            "name": self.name,
            "valid": self.ok,
            "problems": [p.as_dict() for p in self.problems],
        }


def validate(source: str | bytes, file: str = "<input>", *, domains: DomainResolver | None = None) -> Validated:
    """Validate one document. `domains` resolves an Agent's DIS pin (None: the pin is not checked)."""
    result = Validated(file)
    try:
        loaded = load(source, file)
    except DocumentError as exc:
        result.problems = exc.problems
        return result
    result.loaded = loaded
    data = loaded.data
    kind = KINDS.get(data["kind"]) if isinstance(data.get("kind"), str) else None
    if data.get("apiVersion") != API_VERSION:
        result.problems.append(
            loaded.problem(
                "unsupported_api_version",
                f"apiVersion must be {API_VERSION!r}.",
                ("apiVersion",),
                key="apiVersion" not in data,
            )
        )
    if kind is None:
        result.problems.append(loaded.problem("unknown_kind", "kind must be Domain or Agent.", ("kind",)))
        return result
    result.kind = kind
    name = _dig(data, "metadata", "name")
    result.name = name if isinstance(name, str) else None
    result.problems.extend(p for p in _schema_problems(loaded, kind) if p.path not in ("/apiVersion", "/kind"))
    checks = _DomainChecks(loaded) if kind == "domain" else _AgentChecks(loaded, domains)
    result.problems.extend(checks.run())
    result.problems.sort(key=lambda p: (p.line, p.column))
    if len(result.problems) > MAX_PROBLEMS:  # a 1 MiB document may hold 100,000: an answer of tens of MB
        rest = result.problems[MAX_PROBLEMS:]
        result.problems = result.problems[:MAX_PROBLEMS]
        result.problems.append(
            Problem(
                "too_many_problems",
                f"{len(rest):,} more problems from here on are not listed; fix these first.",
                file,
                rest[0].line,
                rest[0].column,
                rest[0].path,
            )
        )
    return result


# --- schema -----------------------------------------------------------------------------------

_SCHEMA_CODES = {
    "Required": "schema_required",
    "AdditionalProperties": "schema_unknown_property",
    "Type": "schema_type",
    "Enum": "schema_enum",
    "Constant": "schema_enum",
    "Pattern": "schema_pattern",
    "MinLength": "schema_length",
    "MaxLength": "schema_length",
    "Minimum": "schema_range",
    "Maximum": "schema_range",
    "MinItems": "schema_size",
    "MaxItems": "schema_size",
    "MinProperties": "schema_size",
    "MaxProperties": "schema_size",
    "UniqueItems": "schema_duplicate_items",
    "FalseSchema": "schema_not_allowed",
    "PropertyNames": "schema_property_name",
    "Custom": "schema_type",  # _WholeNumber's, the only custom keyword
}


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _pattern_message(kind: str, schema_path) -> str | None:
    """The `errorMessage` the schema gives beside a pattern (where the pattern itself, a class of
    characters, says little to a reader), or None."""
    node = schema(kind)
    for step in list(schema_path)[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node.get("errorMessage") if isinstance(node, dict) else None


def _schema_problems(loaded: Loaded, kind: str) -> list[Problem]:
    problems = _names_problems(loaded, kind)
    for error in _validator(kind).iter_errors(loaded.data):
        path = tuple(error.instance_path)
        detail = error.kind
        kind_name = type(detail).__name__
        code = _SCHEMA_CODES.get(kind_name, "schema_invalid")
        message, spot = error.message, path
        if kind_name == "AdditionalProperties":
            for key in detail.unexpected:
                problems.append(loaded.problem(code, f"Unknown property {key!r}.", (*path, key), key=True))
            continue
        if kind_name == "Required":
            message = f"Missing required property {detail.property!r}"
            spot = (*path, detail.property)  # a pointer to what is missing, placed at the mapping lacking it
        elif kind_name == "FalseSchema":
            message = f"{path[-1]!r} is not allowed here." if path else "Not allowed."
            problems.append(loaded.problem(code, message, path, key=True))
            continue
        elif kind_name == "PropertyNames":
            name = getattr(detail.error, "instance", None)  # point at the offending key, not its mapping
            where = f" (at {pointer(path)})" if path else ""
            spot = (*path, name) if isinstance(name, str) else path
            problems.append(loaded.problem(code, _short(f"Invalid name: {error.message}") + where, spot, key=True))
            continue
        if kind_name == "Pattern":
            message = _pattern_message(kind, error.schema_path) or message
        where = f" (at {pointer(path)})" if path else ""
        problems.append(loaded.problem(code, _short(message[:1].upper() + message[1:]) + where, spot))
    return problems


# --- meaning ----------------------------------------------------------------------------------


def _dig(data, *keys):
    for key in keys:
        if isinstance(key, int):
            if not isinstance(data, list) or key >= len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[key] if isinstance(key, int) else data.get(key)
    return data


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _items(value) -> list[tuple[int, object]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _maps(value) -> list[tuple[int, dict]]:
    """(index, item) for the mapping items of a list (anything else is the schema's concern)."""
    return [(i, item) for i, item in _items(value) if isinstance(item, dict)]


def _named(value) -> list[tuple[int, dict, str]]:
    return [(i, item, item["name"]) for i, item in _maps(value) if isinstance(item.get("name"), str)]


_FILTER_FIELDS = {
    "string": StringField,
    "integer": IntegerField,
    "decimal": DecimalField,
    "boolean": BooleanField,
    "date": DateField,
    "datetime": TimestampField,
    "reference": StringField,
}


def _filter_field(definition: dict):
    kind = definition.get("type")
    if kind == "enum":
        values = definition.get("values")
        return EnumField(choices=tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ())
    if kind == "list":
        item = _filter_field(_mapping(definition.get("items")))
        return ListField(item=item) if item else None
    factory = _FILTER_FIELDS.get(kind) if isinstance(kind, str) else None
    return factory() if factory else None


def entity_filters(entity: dict) -> FilterSpec:
    """The AIP-160 fields of one DIS entity: what its rules' `when` (and DIS queries) may name."""
    fields = {}
    for name, definition in _mapping(entity.get("fields")).items():
        filter_field = _filter_field(_mapping(definition))
        if filter_field is not None:
            fields[name] = filter_field
    return FilterSpec(fields, cache_size=64)


class _Checks:
    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.problems: list[Problem] = []

    def add(self, code: str, message: str, path: tuple, *, key: bool = False) -> None:
        self.problems.append(self.loaded.problem(code, message, path, key=key))

    def unique(self, items, path: tuple, code: str, what: str) -> None:
        seen: Counter = Counter()
        for i, _item, name in _named(items):
            seen[name] += 1
            if seen[name] == 2:
                self.add(code, f"Two {what} are named {name!r}.", (*path, i, "name"))


# dis_query's own arguments (foundry/runtime/tools.py): an entity field of the same name would be
# advertised to the model with the field's type, then read as the tool's argument.
_DIS_QUERY_ARGUMENTS = frozenset({"question", "filter"})


class _DomainChecks(_Checks):
    def __init__(self, loaded: Loaded):
        super().__init__(loaded)
        self.filters: dict[str, FilterSpec] = {}  # by entity: built once, not per rule (rules times fields)
        # Each condition's outcome by (entity, text): YAML aliases repeat one long condition at no
        # cost to the document's size (filters over 256 characters are not kept compiled).
        self.compiled: dict[tuple[str, str], FilterError | None] = {}

    def run(self) -> list[Problem]:
        spec = _mapping(self.loaded.data.get("spec"))
        entities = {k: _mapping(v) for k, v in _mapping(spec.get("entities")).items()}
        for name, entity in entities.items():
            self.entity(name, entity, entities)
        self.relationships(spec.get("relationships"), entities)
        self.rules(spec.get("rules"), entities)
        return self.problems

    def entity(self, name: str, entity: dict, entities: dict) -> None:
        path = ("spec", "entities", name)
        fields = _mapping(entity.get("fields"))
        key = entity.get("key")
        if isinstance(key, str) and key not in fields:
            self.add("dis_unknown_field", f"Key {key!r} is not a field of {name!r}.", (*path, "key"))
        folded: dict[str, str] = {}
        for field_name in fields:
            # Two fields spelt alike (`amount`, `a_mount`): the runtime would take an argument for
            # either as written, and a lenient server reads both as one field — a rule on the first
            # would never see a value passed as the second.
            twin = folded.setdefault(name_fold(str(field_name)), str(field_name))
            if twin != str(field_name):
                self.add(
                    "dis_field_lookalike",
                    f"Field {field_name!r} of {name!r} reads as field {twin!r} (they differ only in case, "
                    "underscores, hyphens or look-alike characters); name it apart.",
                    (*path, "fields", field_name),
                )
            # A field spelt like one of dis_query's own arguments (`filter_`, `Question`): the
            # runtime's look-alike check would read that argument as the field, and refuse it.
            reserved = next(
                (r for r in sorted(_DIS_QUERY_ARGUMENTS) if name_fold(r) == name_fold(str(field_name))), None
            )
            if reserved is not None:
                self.add(
                    "dis_field_reserved",
                    f"A field may not be named {field_name!r}: dis_query tools take {reserved!r} as their own "
                    "argument, and the field would be read as it.",
                    (*path, "fields", field_name),
                )
        for field_name, definition in fields.items():
            definition = _mapping(definition)
            for where, spot in ((definition, ()), (_mapping(definition.get("items")), ("items",))):
                target = where.get("entity")
                if where.get("type") == "reference" and isinstance(target, str) and target not in entities:
                    self.add(
                        "dis_unknown_entity",
                        f"Field {name}.{field_name} refers to unknown entity {target!r}.",
                        (*path, "fields", field_name, *spot, "entity"),
                    )

    def relationships(self, relationships, entities: dict) -> None:
        path = ("spec", "relationships")
        self.unique(relationships, path, "relationship_duplicate_name", "relationships")
        for i, item in _maps(relationships):
            known = True
            for end in ("from", "to"):
                target = item.get(end)
                if isinstance(target, str) and target not in entities:
                    self.add("dis_unknown_entity", f"Unknown entity {target!r}.", (*path, i, end))
                    known = False
            via, source = item.get("via"), item.get("from")
            if not (known and isinstance(via, str) and isinstance(source, str)):
                continue
            definition = _mapping(_mapping(entities.get(source, {}).get("fields")).get(via))
            if not definition:
                self.add("dis_unknown_field", f"{via!r} is not a field of {source!r}.", (*path, i, "via"))
            else:
                target = definition.get("entity") or _mapping(definition.get("items")).get("entity")
                if target != item.get("to"):
                    self.add(
                        "relationship_via_mismatch",
                        f"{source}.{via} does not refer to {item.get('to')!r}.",
                        (*path, i, "via"),
                    )

    def rules(self, rules, entities: dict) -> None:
        path = ("spec", "rules")
        self.unique(rules, path, "rule_duplicate_name", "rules")
        for i, rule in _maps(rules):
            entity = rule.get("entity")
            when = rule.get("when")
            if not isinstance(entity, str):
                continue
            if entity not in entities:
                self.add("dis_unknown_entity", f"Unknown entity {entity!r}.", (*path, i, "entity"))
                continue
            if isinstance(when, str) and when and not when.strip():
                # The empty filter matches every call: a rule nobody wrote (the schema refuses "").
                self.add(
                    "rule_expression_invalid",
                    "A rule's condition is blank; write the condition it applies under, e.g. amount > 10000.",
                    (*path, i, "when"),
                )
            elif isinstance(when, str) and when:
                self.expression(entities[entity], entity, when, (*path, i, "when"))

    def expression(self, entity: dict, name: str, text: str, path: tuple) -> None:
        if name not in self.filters:
            self.filters[name] = entity_filters(entity)
        if (name, text) not in self.compiled:
            try:
                self.filters[name].compile(text)
                self.compiled[name, text] = None
            except FilterError as exc:
                self.compiled[name, text] = exc
        if (exc := self.compiled[name, text]) is not None:
            code = {"unknown_field": "rule_unknown_field", "invalid_value": "rule_invalid_value"}.get(
                exc.code, "rule_expression_invalid"
            )
            message = exc.message.replace("Filterable fields", f"Fields of {name!r}")
            line, column = _inside_scalar(self.loaded, path, exc.position)
            self.problems.append(Problem(code, message, self.loaded.file, line, column, pointer(path)))


def _inside_scalar(loaded: Loaded, path: tuple, offset: int | None) -> tuple[int, int]:
    """Where character `offset` of a scalar is in the file, when the scalar is written on its line
    as its value reads (plain or quoted, on one line, without escapes); else the scalar's start:
    an offset into a folded or escaped value names no column of the source."""
    line, column = loaded.where(path)
    if offset is None:
        return line, column
    lines = loaded.lines
    text_line = lines[line - 1] if line <= len(lines) else ""
    opening = text_line[column - 1 : column]
    if opening in ("|", ">"):
        return line, column
    value = loaded.data
    try:
        for key in path:
            value = value[key]
    except (KeyError, IndexError, TypeError):
        return line, column
    start = column if opening in ("'", '"') else column - 1  # the value's first character, 0-based
    written = text_line[start : start + len(value)] if isinstance(value, str) else None
    quoted_whole = opening not in ("'", '"') or text_line[start + len(value) : start + len(value) + 1] == opening
    if written != value or not quoted_whole:
        return line, column
    return line, start + 1 + offset


def url_host(url: str) -> str:
    """The host of `url` as `fetch` compares it with its `hosts` (foundry/runtime/network.py): the
    IDNA A-label, lowercase, without a trailing dot ("" for no URL, or one httpx cannot read).
    urlsplit's `hostname` keeps a U-label (bücher.example), which no fetch of that very URL matched.
    (httpx is imported here: `forge` loads it only for commands that go online, or documents that
    declare an http tool.)"""
    import httpx

    try:
        return httpx.URL(url).raw_host.decode("ascii").lower().rstrip(".")
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return ""


def url_port(scheme: str, port: int | None) -> int | None:
    """The port a URL reaches: its own, else its scheme's (what `host_allowed` is given)."""
    return port or {"https": 443, "http": 80}.get(scheme)


def host_allowed(host: str, port: int | None, patterns) -> bool:
    """Whether `host` (or `host:port`) is among a tool's declared hosts; `*.example.com` matches
    subdomains only. Validation and the runtime's HTTP tool decide with this one function."""
    candidates = [host] + ([f"{host}:{port}"] if port else [])
    for pattern in patterns:
        if not isinstance(pattern, str):
            continue
        pattern = pattern.lower()
        for candidate in candidates:
            if candidate == pattern:
                return True
            if pattern.startswith("*.") and candidate.endswith(pattern[1:]) and candidate != pattern[2:]:
                return True
    return False


class _AgentChecks(_Checks):
    def __init__(self, loaded: Loaded, domains: DomainResolver | None):
        super().__init__(loaded)
        self.domains = domains

    def run(self) -> list[Problem]:
        data = self.loaded.data
        spec = _mapping(data.get("spec"))
        provider = _dig(spec, "model", "provider")
        if isinstance(provider, str) and provider not in PROVIDERS:
            self.add(
                "provider_unknown",
                f"Unknown provider {provider!r}; one of {', '.join(PROVIDERS)}.",
                ("spec", "model", "provider"),
            )
        entities = self.pinned_entities(_mapping(spec.get("domain")))
        tools = spec.get("tools")
        tool_names = {name for _i, _t, name in _named(tools)}
        self.unique(tools, ("spec", "tools"), "tool_duplicate_name", "tools")
        for i, tool in _maps(tools):
            self.tool(i, tool, entities, _dig(data, "metadata", "name"))
        approvals = _dig(spec, "approvals", "tools")
        for i, name in _items(approvals):
            if isinstance(name, str) and name not in tool_names:
                self.add(
                    "approval_unknown_tool",
                    f"No tool named {name!r} to require approval for.",
                    ("spec", "approvals", "tools", i),
                )
        self.tests(spec.get("tests"), tool_names)
        return self.problems

    def pinned_entities(self, pin: dict) -> dict | None:
        name, version = pin.get("name"), pin.get("version")
        if self.domains is None or not isinstance(name, str) or type(version) is not int:
            return None
        found = self.domains(name, version)
        if found.data is None:
            self.add(
                found.code or "dis_not_found", found.message or f"No domain {name!r}.", ("spec", "domain", found.field)
            )
            return None
        return {k: _mapping(v) for k, v in _mapping(_dig(found.data, "spec", "entities")).items()}

    def tool(self, i: int, tool: dict, entities: dict | None, agent_name) -> None:
        path = ("spec", "tools", i)
        kind = tool.get("type")
        entity = tool.get("entity")
        if isinstance(entity, str) and entities is not None and entity not in entities:
            self.add("dis_unknown_entity", f"The pinned domain has no entity {entity!r}.", (*path, "entity"))
        if kind == "http" and isinstance(tool.get("url"), str) and isinstance(tool.get("hosts"), list):
            try:
                parts = urlsplit(tool["url"])
                host = url_host(tool["url"])  # as the runtime reads it (network._check): an IDN as its A-label
                port = url_port(parts.scheme.lower(), parts.port)
            except ValueError:
                self.add("http_url_invalid", "The URL cannot be parsed.", (*path, "url"))
                return
            if "@" in parts.netloc:  # user:password@ — kept in every version, its history, exports
                self.add(
                    "http_url_invalid",
                    "The URL carries credentials (user:password@): a manifest is read by everyone who may "
                    "read agents, and kept in its history. Give the URL without them.",
                    (*path, "url"),
                )
                return
            if not host:  # one httpx cannot read (a tab in it, say): every call would be http_url_invalid
                self.add("http_url_invalid", "The URL has no host that can be reached.", (*path, "url"))
                return
            if not host_allowed(host, port, tool["hosts"]):
                self.add(
                    "http_host_undeclared", f"The URL's host {host!r} is not among the tool's hosts.", (*path, "url")
                )
        if kind == "subagent" and tool.get("agent") == agent_name:
            self.add("subagent_self", "An agent cannot call itself as a sub-agent.", (*path, "agent"))

    def tests(self, tests, tool_names: set) -> None:
        path = ("spec", "tests")
        self.unique(tests, path, "test_duplicate_name", "tests")
        for i, test in _maps(tests):
            for j, step in _maps(test.get("script")):
                tool = _dig(step, "tool_call", "tool")
                if isinstance(tool, str) and tool not in tool_names:
                    self.add(
                        "test_unknown_tool", f"No tool named {tool!r}.", (*path, i, "script", j, "tool_call", "tool")
                    )
            expect = _mapping(test.get("expect"))
            for key in ("tools_called", "approvals_requested"):
                for j, tool in _items(expect.get(key)):
                    if isinstance(tool, str) and tool not in tool_names:
                        self.add("test_unknown_tool", f"No tool named {tool!r}.", (*path, i, "expect", key, j))

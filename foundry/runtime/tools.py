"""The tools an agent's manifest declares, as the model sees them and as they run.

* `dis_query` answers from the pinned DIS (which defines a domain and holds no data rows): the
  tool's entity with its fields and key, the relationships touching it, the rules on it, and
  the glossary entries whose term appears (as a word, any case) in the optional `question`
  (at most MAX_QUESTION_CHARS characters; the lookup ends with the time the run has left).
  An optional `filter` is checked as an AIP-160 expression over the entity's fields and echoed.
  Arguments naming the entity's fields are accepted (typed); any other argument is refused.
  (`max_results` has nothing to bound until there are records to return.)
* `http` makes one real request through `foundry.runtime.network` (declared hosts only, SSRF
  checks at every hop, bounded size and time). `{name}` in the URL is filled from the argument
  `name`, URL-quoted (all but unreserved characters escaped; `.` and `..` refused); the other
  arguments become the query string (GET, DELETE) or the JSON body (POST, PUT, PATCH). A
  status of 400 or more is a tool error carrying the response. The default timeout is 10 s,
  never more than the run has left. A runner's `key` for the call goes out as the
  `Idempotency-Key` header (the same on every attempt at that call).
* `subagent` hands `input` to the injected runner (a server runs the child agent as a child
  run); without one — the offline sandbox — the call is a tool error saying so.

A tool with an `entity` is subject to that entity's DIS rules (`foundry.runtime.rules`).
"""

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit

from foundry.errors import CodedError
from foundry.filtering import FilterError
from foundry.runtime.network import FetchError, NetworkPolicy, fetch
from foundry.runtime.providers import ToolSpec
from foundry.runtime.rules import ArgumentError, Verdict, folded_names, read_as, rule_book

HTTP_DEFAULT_TIMEOUT = 10.0
MAX_QUESTION_CHARS = 2000  # dis_query's `question`: what its glossary lookup reads
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BODY_METHODS = ("POST", "PUT", "PATCH")

# (agent name, input text, seconds left, call key) -> the child run's final answer; raise ToolError
# on failure. The key (`<thread id>:<step index>`, or None offline) is the same on every attempt
# at that call, so a runner can find the child run an earlier attempt started.
SubagentRunner = Callable[[str, str, float, str | None], str]


class ToolError(CodedError):
    """A call the tool refused or could not complete; the model is told `message`."""


@dataclass(frozen=True)
class ToolOptions:
    """What the place running the agent lets its tools do."""

    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    subagent: SubagentRunner | None = None
    # Headers an http tool's request gets for a given host (a service token for the workspace's
    # own API: apps.identity.service_tokens.own_workspace_headers); asked per hop.
    credentials: Callable[[str, str], Mapping[str, str]] | None = None


@dataclass(frozen=True)
class Tool:
    name: str
    kind: str  # dis_query | http | subagent
    entity: str | None
    definition: Mapping
    spec: ToolSpec


# --- argument schemas -----------------------------------------------------------------------

_JSON_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": ["number", "string"]},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "reference": {"type": "string"},
}


def _field_schema(definition: Mapping) -> dict:
    kind = definition.get("type")
    if kind == "enum":
        schema = {"type": "string", "enum": list(definition.get("values") or [])}
    elif kind == "list":
        schema = {"type": "array", "items": _field_schema(definition.get("items") or {})}
    else:
        schema = dict(_JSON_TYPES.get(kind, {}))
    if definition.get("description"):
        schema["description"] = definition["description"]
    return schema


def _entity_properties(entity: Mapping) -> dict:
    return {name: _field_schema(d) for name, d in (entity.get("fields") or {}).items()}


def _spec(tool: Mapping, entity: Mapping | None) -> ToolSpec:
    kind = tool["type"]
    if kind == "dis_query":
        properties = {
            "question": {"type": "string", "description": "What you want to know about this entity."},
            "filter": {"type": "string", "description": "An AIP-160 filter over the entity's fields."},
            **_entity_properties(entity or {}),
        }
        parameters = {"type": "object", "properties": properties, "additionalProperties": False}
    elif kind == "http":
        names = list(dict.fromkeys(_PLACEHOLDER.findall(tool["url"])))
        properties = {**_entity_properties(entity or {}), **{n: {"type": "string"} for n in names}}
        parameters = {"type": "object", "properties": properties, "required": names, "additionalProperties": True}
    else:
        parameters = {
            "type": "object",
            "properties": {"input": {"type": "string", "description": f"The request for agent {tool['agent']!r}."}},
            "required": ["input"],
            "additionalProperties": False,
        }
    return ToolSpec(tool["name"], tool["description"], parameters)


# --- the toolbox ----------------------------------------------------------------------------


class Toolbox:
    """A manifest's tools bound to its pinned DIS and to what the runner allows."""

    def __init__(self, manifest: Mapping, domain: Mapping, options: ToolOptions | None = None):
        spec = manifest["spec"]
        self.options = options or ToolOptions()
        self.domain = domain
        self.domain_name = manifest["spec"]["domain"]["name"]
        self.domain_version = manifest["spec"]["domain"]["version"]
        self.rules = rule_book(domain)
        self.approvals = frozenset((spec.get("approvals") or {}).get("tools") or ())
        self.tools: dict[str, Tool] = {}
        for definition in spec.get("tools") or ():
            entity = definition.get("entity")
            if entity is not None and entity not in self.rules.entities:
                raise ValueError(f"Tool {definition['name']!r} names unknown entity {entity!r}.")
            self.tools[definition["name"]] = Tool(
                definition["name"],
                definition["type"],
                entity,
                definition,
                _spec(definition, self.rules.entities.get(entity) if entity else None),
            )

    @property
    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self.tools.values()]

    def get(self, name: str) -> Tool:
        tool = self.tools.get(name)
        if tool is None:
            raise ToolError("tool_unknown", f"There is no tool named {name!r}; tools: {', '.join(self.tools)}.")
        return tool

    def review(self, tool: Tool, arguments: Mapping) -> tuple[Verdict, list[str]]:
        """The DIS rules' verdict on a call, and why it needs approval (empty: it does not)."""
        try:
            verdict = self.rules.review(tool.entity, arguments)
        except ArgumentError as exc:
            raise ToolError("tool_argument_invalid", exc.message) from None
        reasons = [f"approvals.tools lists {tool.name!r}"] if tool.name in self.approvals else []
        reasons += [rule.explain() for rule in verdict.approval]
        return verdict, reasons

    def run(self, tool: Tool, arguments: Mapping, *, timeout: float, key: str | None = None) -> str:
        """Execute one call; its result as text for the model, or ToolError. `key` names the call."""
        if tool.kind == "dis_query":
            return self._dis_query(tool, arguments, time.monotonic() + timeout)
        if tool.kind == "http":
            return self._http(tool, arguments, timeout, key)
        return self._subagent(tool, arguments, timeout, key)

    # --- dis_query ------------------------------------------------------------------------
    def _dis_query(self, tool: Tool, arguments: Mapping, deadline: float) -> str:
        entity_name = tool.entity
        entity = self.rules.entities[entity_name]
        unknown = sorted(set(arguments) - {"question", "filter"} - set(entity.get("fields") or {}))
        if unknown:
            raise ToolError("tool_argument_unknown", f"Unknown argument(s): {', '.join(unknown)}.")
        question, text = arguments.get("question"), arguments.get("filter")
        for name, value in (("question", question), ("filter", text)):
            if value is not None and not isinstance(value, str):
                raise ToolError("tool_argument_invalid", f"Argument {name!r} must be a string.")
        if question is not None and len(question) > MAX_QUESTION_CHARS:
            raise ToolError(
                "tool_argument_invalid", f"Argument 'question' is at most {MAX_QUESTION_CHARS:,} characters."
            )
        if text:
            try:
                # Checked, not kept: the rule book is shared by every run of the same DIS in the
                # process, and a model may send any number of filters.
                self.rules.filters[entity_name].compile_uncached(text)
            except FilterError as exc:
                where = f" at position {exc.position}" if exc.position is not None else ""
                raise ToolError("dis_filter_invalid", f"The filter is not valid{where}: {exc.message}") from None
        spec = self.domain.get("spec") or {}
        answer = {
            "domain": {"name": self.domain_name, "version": self.domain_version},
            "entity": entity_name,
            "description": entity.get("description", ""),
            "key": entity.get("key"),
            "fields": entity.get("fields") or {},
            "relationships": [
                r for r in spec.get("relationships") or () if entity_name in (r.get("from"), r.get("to"))
            ],
            "rules": [
                {k: r[k] for k in ("name", "when", "then", "message") if k in r}
                for r in spec.get("rules") or ()
                if r.get("entity") == entity_name
            ],
            "glossary": _glossary_hits(spec.get("glossary") or {}, question or "", deadline),
            "note": "The domain schema defines this entity; it holds no data records.",
        }
        if text:
            answer["filter"] = text
        return json.dumps(answer, ensure_ascii=False, default=str)

    # --- http -----------------------------------------------------------------------------
    def _http(self, tool: Tool, arguments: Mapping, timeout: float, key: str | None = None) -> str:
        definition = tool.definition
        template = definition["url"]
        names = set(_PLACEHOLDER.findall(template))
        in_path = set(_PLACEHOLDER.findall(urlsplit(template).path))
        missing = sorted(n for n in names if arguments.get(n) in (None, ""))
        if missing:
            raise ToolError("tool_argument_missing", f"Missing argument(s) for the URL: {', '.join(missing)}.")
        for name in names:
            if isinstance(arguments[name], dict | list):
                raise ToolError("tool_argument_invalid", f"Argument {name!r} must be a single value.")
            value = _text(arguments[name])
            # Dots alone climb out of the declared path, as servers that trim spaces or controls
            # read `.. ` too; a slash, sent as %2F, does on the many servers (this platform's
            # among them) that decode it before routing: another endpoint than the one declared.
            seen = "".join(char for char in value if char.isprintable() and not char.isspace())
            if seen and set(seen) == {"."}:
                raise ToolError("tool_argument_invalid", f"Argument {name!r} cannot be '.' or '..'.")
            if name in in_path and ("/" in value or "\\" in value):
                raise ToolError("tool_argument_invalid", f"Argument {name!r} names one path segment: no '/' or '\\'.")
        url = _PLACEHOLDER.sub(lambda m: quote(_text(arguments[m.group(1)]), safe=""), template)
        rest = {k: v for k, v in arguments.items() if k not in names}
        method = definition.get("method", "GET")
        params = body = None
        # The declared URL's own query parameters are the manifest's, not the model's to change,
        # under any spelling a server may read as theirs (`scope[]`, ` scope`: rules.read_as) —
        # nor in a body, which servers that merge it with the query let win (PHP's $_REQUEST).
        fixed = folded_names(name for name, _ in parse_qsl(urlsplit(template).query, keep_blank_values=True))
        taken = sorted(k for k in rest if read_as(k, fixed) is not None)
        if taken:
            raise ToolError(
                "tool_argument_invalid", f"The tool's URL sets {', '.join(taken)}; a call cannot change it."
            )
        if method in _BODY_METHODS:
            body = rest or None
        elif rest:
            # A list of single values is the parameter repeated (network.fetch); nothing deeper.
            bad = sorted(
                k
                for k, v in rest.items()
                if isinstance(v, dict) or (isinstance(v, list) and any(isinstance(i, dict | list) for i in v))
            )
            if bad:
                raise ToolError(
                    "tool_argument_invalid",
                    f"Query arguments are single values or lists of them: {', '.join(bad)}.",
                )
            params = rest
        limit = min(float(definition.get("timeout_seconds", HTTP_DEFAULT_TIMEOUT)), timeout)
        try:
            result = fetch(
                method,
                url,
                hosts=definition["hosts"],
                timeout=limit,
                policy=self.options.network,
                params=params,
                json_body=body,
                hop_headers=self.options.credentials,
                idempotency_key=key,
            )
        except FetchError as exc:
            raise ToolError(exc.code, exc.message) from None
        content_type = result.content_type.split(";")[0].strip().lower()
        raw = None  # the body's own JSON text, carried as the service wrote it
        if content_type == "application/json" or content_type.endswith("+json"):
            raw = _json_text(result.text())
            payload = result.text() if raw is None else None
        elif content_type.startswith("text/") or content_type in ("application/xml", ""):
            payload = result.text()
        else:
            payload = f"<{len(result.body)} bytes of {content_type}>"
        outcome = {"status": result.status, "url": result.url, "content_type": content_type, "body": payload}
        text = json.dumps(outcome, ensure_ascii=False)
        if raw is not None:  # `"body": null}` → the body's text: its numbers as written (no float rounding)
            text = text[: -len("null}")] + raw + "}"
        if result.status >= 400:
            raise ToolError("http_status", text)
        return text

    # --- subagent -------------------------------------------------------------------------
    def _subagent(self, tool: Tool, arguments: Mapping, timeout: float, key: str | None = None) -> str:
        agent = tool.definition["agent"]
        if unknown := sorted(set(arguments) - {"input"}):  # its schema's only argument, as dis_query's are
            raise ToolError(
                "tool_argument_unknown", f"Unknown argument(s): {', '.join(unknown)}; a sub-agent takes 'input'."
            )
        request = arguments.get("input")
        if not isinstance(request, str) or not request.strip():
            raise ToolError("tool_argument_missing", "Argument 'input' (the request for the sub-agent) is required.")
        if self.options.subagent is None:
            raise ToolError(
                "subagent_unavailable",
                f"Sub-agents need a Foundry server: {agent!r} cannot run in the offline sandbox.",
            )
        return self.options.subagent(agent, request, timeout, key)


def _json_constant(name: str):
    raise ValueError(f"{name} is no JSON")


def _json_text(text: str) -> str | None:
    """`text` stripped when it is one JSON value (strictly: no NaN or Infinity), else None."""
    try:
        json.loads(text, parse_constant=_json_constant, parse_float=str, parse_int=str)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
        return None
    return text.strip()


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _glossary_hits(glossary: Mapping, question: str, deadline: float) -> dict:
    """The entries whose term is a word (or words) of `question`, in any case.

    A domain may hold thousands of terms: an ASCII term is first looked for as a substring of
    the lower-cased question, when that is ASCII too (the same any-case match, for ASCII), and
    only a term found so is matched as a word; others are matched at once. Past `deadline`
    (time.monotonic()), the lookup ends as a tool error."""
    if not question:
        return {}
    lowered = question.lower() if question.isascii() else None
    hits = {}
    for number, (term, text) in enumerate(glossary.items()):
        if number % 256 == 0 and time.monotonic() > deadline:
            raise ToolError("tool_timeout", "The glossary lookup ran out of the time the run has left.")
        if lowered is not None and term.isascii() and term.lower() not in lowered:
            continue
        if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", question, flags=re.IGNORECASE):
            hits[term] = text
    return hits

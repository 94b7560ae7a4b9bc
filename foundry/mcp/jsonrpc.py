"""JSON-RPC rules both MCP entry points apply before the SDK sees a message (no Django here:
`forge mcp` imports it)."""

import json
import re

_SURROGATE = re.compile("[\ud800-\udfff]")
# The -32602 message of a request holding a lone surrogate, from the gateway and `forge mcp` alike.
SURROGATE_REFUSED = "json_text_invalid: Text may not contain lone surrogates (an unpaired \\ud800-\\udfff escape)."
# The -32602 message of a request whose params are no object (MCP's are always an object).
PARAMS_NOT_OBJECT = "Invalid params: a request's params, when given, are an object."


class DuplicateKey(Exception):
    """A JSON object that names a key twice (RFC 8259 §4: what its reader does is unpredictable;
    Python's keeps the last value, so a proxy or a log reader keeping the first would see another
    request than the one carried out). Refused, as YAML documents' duplicates are."""

    code = "json_duplicate_key"

    def __init__(self, key: str, *, message_id: bool = False):
        self.key = key
        self.message_id = message_id  # it is the JSON-RPC message's own `id`: which one is unclear
        super().__init__(f"A JSON object names {key[:100]!r} twice.")


def message_read(raw: str | bytes) -> tuple[object | None, DuplicateKey | None]:
    """(a message as the SDK reads it — each object's last value —, a key it names twice, if any;
    `DuplicateKey.message_id` when it is the message's own `id`). ValueError when it is not JSON,
    RecursionError when it is nested past the parser's depth."""
    repeated: list[list[str]] = []  # each object's keys named twice, the outermost object's last

    def objects(pairs: list[tuple[str, object]]) -> dict:
        seen: set[str] = set()
        repeated.append([key for key, _ in pairs if key in seen or seen.add(key)])
        return dict(pairs)

    payload = json.loads(raw, object_pairs_hook=objects)
    twice = [key for keys in repeated for key in keys]
    if not twice:
        return payload, None
    own = repeated[-1] if isinstance(payload, dict) else []
    return payload, DuplicateKey("id", message_id=True) if "id" in own else DuplicateKey(twice[0])


def object_unique(pairs: list[tuple[str, object]]) -> dict:
    """json.loads' object_pairs_hook: the object, or DuplicateKey."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def id_invalid(payload: object) -> bool:
    """A message whose `id` is neither a string nor an integer (null, a fraction, a boolean):
    the SDK would take it for a notification and answer nothing, leaving its sender waiting.
    JSON-RPC 2.0 makes any message with an `id` member a request: it is answered -32600."""
    if not isinstance(payload, dict) or "id" not in payload:
        return False
    value = payload["id"]
    return not (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)))


def params_not_object(payload: object) -> bool:
    """A request, readable as one (jsonrpc "2.0", a method, a valid id), whose params are no object:
    the SDK refuses it as no message at all (id null); JSON-RPC 2.0 answers it -32602 at its id."""
    return (
        isinstance(payload, dict)
        and payload.get("jsonrpc") == "2.0"
        and isinstance(payload.get("method"), str)
        and "id" in payload
        and not id_invalid(payload)
        and "params" in payload  # null too: JSON-RPC 2.0 (4.2) params, when present, are structured
        and not isinstance(payload["params"], dict)
    )


METHOD_SHOWN = 200  # characters of a method's name an answer echoes; MCP's longest is ~40


def method_too_long(payload: object) -> bool:
    """A request (with a valid id) naming a method longer than any this server could serve."""
    return (
        isinstance(payload, dict)
        and payload.get("jsonrpc") == "2.0"
        and "id" in payload
        and not id_invalid(payload)
        and isinstance(payload.get("method"), str)
        and len(payload["method"]) > METHOD_SHOWN
    )


def surrogate_found(value: object) -> bool:
    """Whether a lone surrogate (`"\\ud800"` unpaired) is anywhere in a parsed message: Python's
    parser takes one, the SDK's refuses the whole message as unparsable (-32700, "unexpected end
    of hex escape"), so the gateway names it instead, as the API does (`json_text_invalid`).
    Walked without recursion: a message may be nested as deep as the parser allowed."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False

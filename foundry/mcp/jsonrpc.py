"""JSON-RPC rules both MCP entry points apply before the SDK sees a message (no Django here:
`forge mcp` imports it)."""


def id_invalid(payload: object) -> bool:
    """A message whose `id` is neither a string nor an integer (null, a fraction, a boolean):
    the SDK would take it for a notification and answer nothing, leaving its sender waiting.
    JSON-RPC 2.0 makes any message with an `id` member a request: it is answered -32600."""
    if not isinstance(payload, dict) or "id" not in payload:
        return False
    value = payload["id"]
    return not (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)))

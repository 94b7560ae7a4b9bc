"""The API's JSON parser: DRF's, refusing what it would choke on with a 400, never a 500.

Refused: nesting deep enough to exhaust Python's recursion (`json` raises RecursionError),
strings PostgreSQL cannot store — NUL characters and lone UTF-16 surrogates (`"\\u0000"`,
`"\\ud800"` are valid JSON escapes, but no text or jsonb column takes them) — and objects that
name a key twice (`json_duplicate_key`: `{"role": "viewer", "role": "owner"}` is one request to
a reader keeping the first value, another to one keeping the last).
"""

import codecs

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

from foundry.db.text import UNSTORABLE
from foundry.mcp.jsonrpc import DuplicateKey, object_unique

MAX_DEPTH = 64


def json_check(value, depth: int = 0) -> None:
    """ParseError (`json_too_deep`, `json_text_invalid`) for what no column could take; the MCP
    server checks its tools' arguments with it too (foundry/mcp/context.py)."""
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.", code="json_too_deep")
    if isinstance(value, str):
        if UNSTORABLE.search(value):
            raise ParseError("Text may not contain NUL characters or lone surrogates.", code="json_text_invalid")
    elif isinstance(value, dict):
        for key, item in value.items():
            json_check(key, depth + 1)
            json_check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            json_check(item, depth + 1)


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        """DRF's JSONParser.parse, with objects that name a key twice refused (`json_duplicate_key`)."""
        encoding = get_encoding(parser_context or {})  # DRF's: it refuses a charset that is a compressor
        try:
            data = json.load(
                codecs.getreader(encoding)(stream),
                parse_constant=json.strict_constant if self.strict else None,
                object_pairs_hook=object_unique,
            )
        except DuplicateKey as exc:
            raise ParseError(str(exc), code=exc.code) from None
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.", code="json_too_deep") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        json_check(data)
        return data

"""How /mcp reads a Content-Type and a time spelt in ways the standards allow (found by a review)."""

import json

import httpx2
import pytest

from tests.mcp.conftest import mcp_url

PING = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'


def _post(port: int, ws, body: bytes, **extra: str) -> httpx2.Response:
    headers = {
        "Host": f"{ws.slug}.localhost:{port}",
        "Authorization": f"Bearer {ws.tokens['owner']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        **extra,
    }
    return httpx2.post(mcp_url(port), content=body, headers=headers, timeout=30)


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "Application/Json; charset=utf-8"])
def test_a_json_content_type_in_another_letter_case_is_accepted(mcp_port, ws, content_type):
    """RFC 9110 §8.3.1: media type and subtype are case-insensitive, so `Application/Json` is
    application/json, and the ping is answered. The gateway admitted it (after spending its rate
    unit), but the SDK behind it compared the header as written and refused it with a 415 of its
    own; the gateway now hands the SDK the media type in lower case."""
    response = _post(mcp_port, ws, PING, **{"Content-Type": content_type})
    assert response.status_code == 200, (response.status_code, response.text[:200])
    assert '"result":{}' in response.text.replace(" ", ""), response.text[:200]


def _usage(port: int, ws, start: str) -> dict:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "get_usage", "arguments": {"start": start}},
    }
    response = _post(port, ws, json.dumps(body).encode())
    assert response.status_code == 200, response.text[:200]
    return json.loads(response.text[response.text.index("{") :])["result"]


@pytest.mark.parametrize("start", ["2025-01-01T00:00+05", "2025-01-01T00:00:00-03"])
def test_get_usage_reads_a_zone_of_hours_alone(mcp_port, ws, start):
    """ISO 8601 allows a UTC offset of hours alone (±hh). get_usage's own check admitted it, and
    pydantic then refused it, blaming "unexpected extra characters at the end of the input"; it
    is read as ±hh:00."""
    result = _usage(mcp_port, ws, start)
    assert not result.get("isError"), result


def test_get_usage_refuses_a_zone_after_a_date_alone_saying_which_forms_it_reads(mcp_port, ws):
    """A zone follows a time in ISO 8601, never a date alone: `2025-01-01Z` is refused by the
    check itself, with the forms it reads, not by pydantic's "unexpected extra characters"."""
    result = _usage(mcp_port, ws, "2025-01-01Z")
    assert result.get("isError"), result
    text = result["content"][0]["text"]
    assert "unexpected extra characters" not in text and "zone (if any) after the time" in text, text

"""/mcp answers any body with a 4xx or a JSON-RPC error, never a 500 (PRODUCT.md: no input may
produce a 500). The gateway peeks at the body before the host or token are checked, so no
workspace is needed."""

import httpx2
import pytest


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 50_000], ids=["deep_array", "deep_object"])
def test_a_body_nested_past_the_parsers_depth_is_not_a_500(mcp_port, body):
    response = httpx2.post(
        f"http://127.0.0.1:{mcp_port}/mcp",
        content=body,
        headers={
            "Host": f"acme.localhost:{mcp_port}",
            "Authorization": "Bearer af_000000000000_x",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])

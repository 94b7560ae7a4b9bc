"""/mcp answers any body with a 4xx or a JSON-RPC error, never a 500 (PRODUCT.md: no input may
produce a 500). The gateway peeks at the body before the host or token are checked, so no
workspace is needed."""

import base64

import httpx2
import pytest


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"a":' * 50_000,
        b'{"jsonrpc": "2.0", "id": 1, "method": ["tools/call"]}',
        b'{"jsonrpc": "2.0", "id": 1, "method": {"a": 1}}',
        b'[{"jsonrpc": "2.0", "id": 1, "method": []}]',
    ],
    ids=["deep_array", "deep_object", "method_list", "method_object", "batch_method_list"],
)
def test_a_body_nested_past_the_parsers_depth_or_with_a_method_that_is_no_text_is_not_a_500(mcp_port, body):
    """The gateway peeks at the body (is it a write?) before the host or token are checked: JSON
    nested past the parser, or a method that is a list or an object, is the SDK's to refuse."""
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


def test_a_bearer_jwt_nested_past_pythons_stack_is_refused_not_a_500(mcp_port):
    header = b'{"alg":"RS256","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    token = ".".join(base64.urlsafe_b64encode(part).decode().rstrip("=") for part in (header, b'{"sub":"a"}', b"sig"))
    response = httpx2.post(
        f"http://127.0.0.1:{mcp_port}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={
            "Host": f"acme.localhost:{mcp_port}",
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
        },
        timeout=30,
    )
    assert response.status_code == 401, (response.status_code, response.text[:200])

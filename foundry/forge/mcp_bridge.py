"""`forge mcp`: MCP on stdin/stdout, relayed message by message to a tenant's /mcp endpoint.

Desktop clients (Claude Desktop, Cursor) start local MCP servers as processes; this is one, and
it has no tools of its own. Both sides are the official SDK's transports: `stdio_server()` reads
and writes the client's newline-delimited JSON-RPC, `streamable_http_client()` posts each message
to the endpoint and reads the answers (JSON or SSE). The bridge copies messages between the two
unchanged, so every method, notification (progress, logging) and protocol version the tenant
serves passes through; an SDK client session in the middle would answer `initialize` itself and
pass on only the methods it knows.

What a client session would add is added here (`_Envelope`): the HTTP headers that mirror the
message (`MCP-Protocol-Version`; in the 2026 protocol also `Mcp-Method`, `Mcp-Name`,
`Mcp-Param-*`), worked out from the relayed messages themselves.

Failures: before serving, one `ping` checks the URL and the token, so a wrong one stops the
bridge at once with the reason on stderr (exit 2). Later, an endpoint that cannot be reached or
refuses a request (the token was revoked, an access token expired) answers that request with a
JSON-RPC error carrying the same one-line reason, which the client shows; the bridge keeps running.
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import sys
from typing import Any

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
    find_invalid_x_mcp_header,
    mcp_param_headers,
    x_mcp_header_map,
)
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    PROTOCOL_VERSION_META_KEY,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCRequest,
    JSONRPCResponse,
)
from mcp_types.version import LATEST_HANDSHAKE_VERSION
from pydantic import ValidationError

from foundry.forge import __version__
from foundry.forge.client import (
    MAX_ANSWER_BYTES,
    base_url,
    loopback_route,
    proxy_for,
    refusal,
    retry_after_seconds,
)
from foundry.forge.errors import ApiError, ForgeError
from foundry.forge.output import shown
from foundry.mcp.jsonrpc import (
    PARAMS_NOT_OBJECT,
    SURROGATE_REFUSED,
    id_invalid,
    message_read,
    params_not_object,
    surrogate_found,
)

MCP_PATH = "/mcp"
# The SDK's own defaults (mcp.shared._httpx_utils): a tool's answer may stream for minutes.
TIMEOUT = httpx2.Timeout(30.0, read=300.0)
PREFLIGHT_SECONDS = 30.0  # the whole of the first ping's answer (docs/forge.md: answers within 30 s)
DRAIN_SECONDS = 5.0  # after stdin closes, how long answers still in flight are awaited
_FAILURE = "forge_failure"  # extension of a response the bridge made up for a failed request
_PREFLIGHT = "forge_preflight"  # extension of the preflight request: its failure is raised, not logged

log = logging.getLogger("foundry.forge.mcp")


def endpoint_url(url: str) -> str:
    """The MCP endpoint: the tenant URL (`url`, its /mcp or /api/v1 dropped by base_url) + /mcp."""
    return base_url(url) + MCP_PATH


def bridge_run(url: str, token: str, *, verbose: bool = False) -> int:
    """Serve until the client closes stdin: 0. A refused token or unreachable URL: ForgeError."""
    _log_to_stderr(verbose)
    try:
        anyio.run(_bridge, endpoint_url(url), token.strip())
    except* BrokenPipeError:  # the client stopped reading before the last answer: nobody to tell
        pass
    return 0


async def _bridge(endpoint: str, token: str) -> None:
    # No compression asked for, and none taken (_BridgeTransport): 32 KiB can unpack to gigabytes.
    headers = {"Authorization": f"Bearer {token}", "User-Agent": f"forge/{__version__}", "Accept-Encoding": "identity"}
    transport = _BridgeTransport(endpoint, httpx2.AsyncHTTPTransport())
    async with httpx2.AsyncClient(headers=headers, timeout=TIMEOUT, transport=transport) as http:
        await _preflight(http, endpoint)
        log.info("relaying stdio to %s", endpoint)
        stdin = _Lines(anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")))
        async with (
            stdio_server(stdin=stdin) as (local_in, local_out),
            streamable_http_client(endpoint, http_client=http) as (remote_in, remote_out),
        ):
            conversation = _Conversation()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_to_client, remote_in, local_out, conversation)
                await _to_server(local_in, remote_out, local_out, conversation, stdin.refusals)
                with anyio.move_on_after(DRAIN_SECONDS):  # stdin closed: answer what was asked
                    await conversation.idle.wait()
                tasks.cancel_scope.cancel()


async def _preflight(http: httpx2.AsyncClient, endpoint: str) -> None:
    """One `ping`, so that a wrong URL or token stops the bridge before the client waits on it:
    answered whole within PREFLIGHT_SECONDS (the relayed calls' long read timeout is theirs)."""
    try:
        with anyio.fail_after(PREFLIGHT_SECONDS):
            response = await http.post(
                endpoint,
                json={"jsonrpc": "2.0", "id": "forge-preflight", "method": "ping"},
                headers={
                    "Accept": "application/json, text/event-stream",
                    MCP_PROTOCOL_VERSION_HEADER: LATEST_HANDSHAKE_VERSION,
                },
                extensions={_PREFLIGHT: True},
            )
            failure = response.extensions.get(_FAILURE)
            if failure is not None:
                raise failure
            body = await response.aread()
    except TimeoutError:
        raise ForgeError("timeout", f"{endpoint} did not answer a ping within {PREFLIGHT_SECONDS:g} s.") from None
    if not any(_answers_preflight(message) for message in _messages(response, body)):
        # A 2xx or 3xx that is no JSON-RPC answer: another service, a sign-in page, a redirect.
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise ForgeError(
            "unexpected_response",
            f"{endpoint} answered {response.status_code} with {kind} to a ping — is this a Foundry MCP URL?",
        )


def _messages(response: httpx2.Response, body: bytes) -> list[Any]:
    """The JSON documents of an answer: its body (JSON), or its `data:` lines (an SSE stream)."""
    texts = [body]
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        texts = [line[5:] for line in body.splitlines() if line.startswith(b"data:")]
    documents = []
    for text in texts:
        try:
            documents.append(json.loads(text))
        except ValueError:
            continue
    return documents


def _answers_preflight(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and message.get("jsonrpc") == "2.0"
        and message.get("id") == "forge-preflight"
        and ("result" in message or "error" in message)
    )


async def _to_server(local_in, remote_out, local_out, conversation: _Conversation, refusals: dict) -> None:
    async for item in local_in:
        if isinstance(item, Exception):  # a line that is not JSON-RPC: answered with id null
            log.warning("ignored a line on stdin that is not a JSON-RPC message")
            await local_out.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=None, error=_unreadable(item))))
            continue
        message = item.message
        if isinstance(message, JSONRPCRequest) and message.method in refusals:  # as the gateway answers it
            answer_id, reason = refusals.pop(message.method)
            log.warning("refused a message: %s", reason.split(":", 1)[0])
            error = ErrorData(code=INVALID_PARAMS, message=reason)
            await local_out.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=answer_id, error=error)))
            continue
        if isinstance(message, JSONRPCRequest):
            log.info("request %s (id %s)", message.method, message.id)
        try:
            headers = conversation.sent(message)
        except _Unsendable as exc:  # answered here, neither relayed nor remembered
            log.warning("refused a message: %s", exc)
            if isinstance(message, JSONRPCRequest):
                error = ErrorData(code=INVALID_PARAMS, message=f"Invalid params: {exc}")
                await local_out.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=message.id, error=error)))
            continue
        await remote_out.send(SessionMessage(message, metadata=ClientMessageMetadata(headers=headers)))


# A line the SDK's reader refuses as no JSON-RPC message (answered -32600, id null).
_NOT_A_MESSAGE = '{"jsonrpc": "2.0"}\n'
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


class _Lines:
    """stdin's lines as the SDK's reader takes them, except:

    - a message with an `id` no request may have (null, a fraction, a boolean): the reader would
      take it for a notification and its sender would wait forever, so it is handed over as a
      line the reader refuses (-32600, id null);
    - a request holding a lone surrogate (`"\\ud800"` unpaired): the reader refuses the whole
      line as unparsable and answers id null, so its sender would wait forever too;
    - a message naming a key twice (`{"name": "a", "name": "b"}`): the reader keeps the last
      value, and the gateway, which refuses such a message, would never see it;
    - a request whose params are no object: the reader refuses it as no message (id null).
    Each of the last three is handed over as a request of a `refused` method (random: no client sends it), which
    `_to_server` answers -32602 as the gateway does, at the message's id (null when the message's
    own `id` is the key named twice, or when it has none)."""

    def __init__(self, lines) -> None:
        self._lines = lines
        self.refused = f"forge/refused-{secrets.token_hex(8)}"
        self.refusals: dict[str, tuple[object, str]] = {}  # method → (the id answered at, the message)

    async def __aiter__(self):
        async for line in self._lines:
            try:
                payload, duplicate = message_read(line)
            except (ValueError, RecursionError):  # not JSON, or nested too deep: the reader refuses it
                payload, duplicate = None, None
            if id_invalid(payload) or (isinstance(payload, dict) and surrogate_found(payload.get("id"))):
                yield _NOT_A_MESSAGE
            elif isinstance(payload, dict) and (
                duplicate is not None
                or ("id" in payload and "method" in payload and surrogate_found(payload))
                or params_not_object(payload)
            ):
                answer_id = payload.get("id")
                if duplicate is not None and duplicate.message_id:
                    answer_id = None  # which of its ids is unclear
                if duplicate is not None:
                    reason = f"{duplicate.code}: {duplicate}"
                else:
                    reason = SURROGATE_REFUSED if surrogate_found(payload) else PARAMS_NOT_OBJECT
                method = f"{self.refused}/{len(self.refusals)}"
                self.refusals[method] = (answer_id, reason)
                yield json.dumps({"jsonrpc": "2.0", "id": 0, "method": method}) + "\n"
            else:
                yield line


class _Unsendable(ValueError):
    """A message whose protocol version cannot travel in an HTTP header (CR, LF, non-ASCII)."""


def _unreadable(exc: Exception) -> ErrorData:
    errors = exc.errors() if isinstance(exc, ValidationError) else []
    if errors and errors[0]["type"] == "json_invalid":
        return ErrorData(code=PARSE_ERROR, message="Parse error: the line is not JSON.")
    return ErrorData(code=INVALID_REQUEST, message="Invalid request: the line is not a JSON-RPC message.")


async def _to_client(remote_in, local_out, conversation: _Conversation) -> None:
    async with local_out:
        async for item in remote_in:
            if isinstance(item, Exception):
                log.warning("dropped a message from the server that is not JSON-RPC: %s", item)
                continue
            conversation.received(item.message)
            await local_out.send(SessionMessage(item.message))
            conversation.delivered()


class _Conversation:
    """What the relay learns from the messages passing: the requests in flight, the protocol
    version negotiated, the tools' `x-mcp-header` maps; and from that, the per-message HTTP
    headers an SDK client session would set (mcp.client.session's stamps):

    - 2026 protocol: each request carries its version in `params._meta`; the headers mirror it,
      the method, the name of the tool/prompt/resource, and the tool arguments its input schema
      marks `x-mcp-header` (learnt from the `tools/list` answers that pass through).
    - Handshake protocols: `MCP-Protocol-Version` is the version the `initialize` answer chose.
    """

    def __init__(self) -> None:
        self._asked: dict[Any, str] = {}  # id of each request in flight -> its method
        self._handshake_version: str | None = None
        self._param_headers: dict[str, dict] = {}  # tool -> its x-mcp-header map
        self.idle = anyio.Event()  # set while no request waits for its answer
        self.idle.set()

    def sent(self, message: JSONRPCMessage) -> dict[str, str] | None:
        """Note a message from the client; the HTTP headers to post it with. _Unsendable if its
        protocol version cannot be a header value: relayed, the SDK's transport would keep it
        for every later request and each would fail."""
        method = getattr(message, "method", None)
        params = getattr(message, "params", None) or {}
        meta = params.get("_meta")
        version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
        if isinstance(version, str) and not _HEADER_SAFE.fullmatch(version):
            raise _Unsendable(f"the protocol version in _meta ({version[:40]!r}) is no valid HTTP header value.")
        if isinstance(message, JSONRPCRequest):
            self._asked[message.id] = message.method
            self.idle = anyio.Event() if self.idle.is_set() else self.idle
        elif method == "notifications/cancelled":  # no answer will come
            self._asked.pop(cancelled_request_id_from_params(params), None)
            self.delivered()
        if method and isinstance(version, str):
            headers = {MCP_PROTOCOL_VERSION_HEADER: version, MCP_METHOD_HEADER: method}
            name = params.get(NAME_BEARING_METHODS.get(method, ""))
            if isinstance(name, str):
                headers[MCP_NAME_HEADER] = encode_header_value(name)
            arguments = params.get("arguments")
            if method == "tools/call" and name in self._param_headers and isinstance(arguments, dict):
                headers.update(mcp_param_headers(self._param_headers[name], arguments))
            return headers
        if self._handshake_version and method != "initialize":
            return {MCP_PROTOCOL_VERSION_HEADER: self._handshake_version}
        return None

    def received(self, message: JSONRPCMessage) -> None:
        """Note a message from the server: an answer may tell the version or the tools' headers."""
        if not isinstance(message, JSONRPCResponse | JSONRPCError):
            return
        method = self._asked.pop(message.id, None)
        if not isinstance(message, JSONRPCResponse):
            return
        if method == "initialize" and isinstance(version := message.result.get("protocolVersion"), str):
            self._handshake_version = version
        elif method == "tools/list":
            for tool in message.result.get("tools") or []:
                if not isinstance(tool, dict) or not isinstance(name := tool.get("name"), str):
                    continue
                schema = tool.get("inputSchema")
                if find_invalid_x_mcp_header(schema) is None:
                    self._param_headers[name] = x_mcp_header_map(schema)
                else:  # clients drop such a tool; never mirror a stale map for it
                    self._param_headers.pop(name, None)

    def delivered(self) -> None:
        """The client has what it was sent: idle, if it waits for nothing more."""
        if not self._asked:
            self.idle.set()


class _BridgeTransport(httpx2.AsyncBaseTransport):
    """The HTTP side's transport: `*.localhost` goes to loopback (as in forge's REST client), and a
    request the endpoint does not serve — unreachable, timed out, or refused by Foundry before MCP
    (token, workspace, rate limit) — is answered with a JSON-RPC error saying why, logged once on
    stderr. The SDK hands that error to the client; a raised error would end its transport."""

    def __init__(self, endpoint: str, inner: httpx2.AsyncBaseTransport):
        self._endpoint = endpoint
        self._inner = inner
        self._proxied: dict[str, httpx2.AsyncBaseTransport] = {}  # the environment's proxies (proxy_for)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        proxy = proxy_for(request.url)
        loopback_route(request)
        inner = self._inner
        if proxy is not None:
            if proxy not in self._proxied:
                self._proxied[proxy] = httpx2.AsyncHTTPTransport(proxy=proxy)
            inner = self._proxied[proxy]
        try:
            response = await inner.handle_async_request(request)
        except httpx2.TimeoutException:
            timeout = ForgeError("timeout", f"{self._endpoint} did not answer in time.")
            return self._failed(request, 504, timeout)
        except httpx2.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            return self._failed(
                request, 502, ForgeError("connection_failed", f"Cannot reach {self._endpoint}: {reason}.")
            )
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):  # not asked for: refused before any of it is unpacked
            await response.aclose()
            message = f"{self._endpoint} answered compressed ({encoding[:40]!r}), which forge did not ask for."
            return self._failed(request, 502, ForgeError("unexpected_response", message))
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response  # a stream: the SDK reads it an event at a time (at most 1 MiB each)
        # An answer whole (JSON): at most MAX_ANSWER_BYTES held, as forge's REST client holds.
        body = await _read_capped(response)
        if body is None:
            message = f"{self._endpoint} answered more than {MAX_ANSWER_BYTES // 2**20} MiB — is this a Foundry URL?"
            return self._failed(request, 502, ForgeError("response_too_large", message))
        if response.status_code < 400:
            return httpx2.Response(
                response.status_code, headers=response.headers, content=body, request=request,
                extensions=response.extensions,
            )  # fmt: skip
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("jsonrpc") == "2.0":  # the MCP server's own answer
            return httpx2.Response(response.status_code, headers=response.headers, content=body, request=request)
        return self._failed(request, response.status_code, self._reason(response, document))

    def _reason(self, response: httpx2.Response, document: Any) -> ForgeError:
        status = response.status_code
        error = document.get("error") if isinstance(document, dict) else None
        if not isinstance(error, dict):
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            return ForgeError(
                "unexpected_response", f"{self._endpoint} answered {status} with {kind} — is this a Foundry MCP URL?"
            )
        failure = refusal(self._endpoint, status, error, retry_after_seconds(response))
        if isinstance(failure, ApiError):  # e.g. 421 unknown_host: its message does not name the URL
            return ForgeError(failure.code, f"{self._endpoint}: {failure.message}")
        return failure

    def _failed(self, request: httpx2.Request, status: int, failure: ForgeError) -> httpx2.Response:
        if not request.extensions.get(_PREFLIGHT):
            log.warning("%s", failure.message)
        extensions = {_FAILURE: failure}
        request_id = _request_id(request)
        if request_id is None:  # a notification or an answer: nobody waits for a reply
            return httpx2.Response(status, request=request, extensions=extensions)
        error = ErrorData(code=INTERNAL_ERROR, message=failure.message, data={"reason": failure.code, "status": status})
        body = JSONRPCError(jsonrpc="2.0", id=request_id, error=error).model_dump(mode="json")
        return httpx2.Response(status, json=body, request=request, extensions=extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()
        for transport in self._proxied.values():
            await transport.aclose()


async def _read_capped(response: httpx2.Response) -> bytes | None:
    """The answer's body, or None once it is past MAX_ANSWER_BYTES (said or sent); closed either way."""
    try:
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_ANSWER_BYTES:
            return None
        chunks, size = [], 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        await response.aclose()


def _request_id(request: httpx2.Request) -> Any:
    """The JSON-RPC id of the request posted, or None (not a request, or not a POST)."""
    if request.method != "POST":
        return None
    try:
        message = json.loads(request.content)
    except ValueError:
        return None
    return message.get("id") if isinstance(message, dict) and "method" in message else None


class _OneLine(logging.Formatter):
    """Log records without tracebacks, each one line with its control characters escaped (`shown`):
    `forge` promises one-line errors, and a server's message may hold an escape sequence or a line
    break of its choosing."""

    def format(self, record: logging.LogRecord) -> str:
        return shown(super().format(record))

    def formatException(self, ei) -> str:
        return ""

    def formatStack(self, stack_info: str) -> str:
        return ""


def _log_to_stderr(verbose: bool) -> None:
    """Stdout is the protocol: every log line (the SDK's included) goes to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setFormatter(_OneLine("forge mcp: %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_OneLine("forge mcp: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)

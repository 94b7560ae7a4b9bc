"""A real HTTP server on loopback that answers like a model API, for provider tests.

No model server is reachable from the tests, so this one speaks the two wire formats the
providers use — OpenAI chat completions and Anthropic Messages — from replies queued by the
test, and records every request it received (method, path, query, headers, JSON body) so a
test can assert on exactly what a provider sent. It imports nothing of Django.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.stub_http import StubHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: object = None  # JSON-able, or bytes sent as they are
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (timeouts)
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict  # name → first value
    headers: dict  # lower-case name → value
    raw: bytes

    @property
    def json(self):
        return json.loads(self.raw)


class FakeModelServer:
    """Answers each request with the next queued `Reply` (then `default`); records them all."""

    def __init__(self, host: str = "127.0.0.1"):
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply(500, {"error": {"message": "No reply queued in the test."}})
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                with server._lock:
                    server.requests.append(
                        Received(
                            method=self.command,
                            path=path,
                            query={k: v[0] for k, v in parse_qs(query).items()},
                            headers={k.lower(): v for k, v in self.headers.items()},
                            raw=raw,
                        )
                    )
                    reply = server.replies.pop(0) if server.replies else server.default
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.payload()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (a timeout test)

            do_GET = do_PUT = do_DELETE = do_POST

        self.httpd = StubHTTPServer((host, 0), Handler)
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- wire formats ---------------------------------------------------------------------------


def openai_completion(
    content: str | None = None,
    *,
    tool_calls: list[tuple[str, str, dict | str]] = (),
    prompt_tokens: int = 30,
    completion_tokens: int = 7,
    cached_tokens: int | None = None,
    model: str = "gpt-test",
    finish_reason: str | None = None,
    usage: bool = True,
) -> dict:
    """A chat.completion body; `tool_calls` are (id, name, arguments: dict or raw JSON text)."""
    message: dict = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for call_id, name, args in tool_calls
        ]
    body: dict = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
    }
    if usage:
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if cached_tokens is not None:
            body["usage"]["prompt_tokens_details"] = {"cached_tokens": cached_tokens, "audio_tokens": 0}
    return body


def anthropic_message(
    *blocks: dict,
    input_tokens: int = 20,
    output_tokens: int = 9,
    cache_read: int = 0,
    cache_creation: int = 0,
    model: str = "claude-test",
    stop_reason: str | None = None,
) -> dict:
    """A Messages API `message` body with the given content blocks."""
    uses_tools = any(b.get("type") == "tool_use" for b in blocks)
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(blocks),
        "stop_reason": stop_reason or ("tool_use" if uses_tools else "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_creation,
        },
    }


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def tool_use(call_id: str, name: str, arguments: dict) -> dict:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}

"""What the real providers share: the tenant's connection, a guarded HTTP client, retries, errors.

`Connection` is read from `ProviderSettings.credentials` (a tenant's, decrypted by apps.providers;
never from the environment). Its `repr` never shows the key.

The HTTP client given to the vendor SDKs sends every request through `GuardedTransport`: the
host of the URL is resolved here, each address is checked against the `NetworkPolicy` (the same
rules as agent HTTP tools, foundry/runtime/network.py: public addresses only unless the policy
admits more), and the connection goes to the checked address itself, with the Host header and
TLS SNI kept on the name, so a second DNS answer cannot swap in another address. Plain http is
refused to a public address (the API key would cross the internet in clear text). Redirects are
not followed and proxy variables of the environment are ignored. Responses are read
uncompressed, at most `policy.max_response_bytes`, and an attempt ends at its timeout in total,
not only between two reads.

Retries are ours, not the SDKs' (they are created with `max_retries=0`), so that they end with
the run's time budget: `call_with_retries` retries timeouts, failed connections and HTTP 408,
409, 429 and 5xx up to `max_retries` times, waiting as the endpoint's `Retry-After` says (when it
fits in what is left of the budget; beyond `MAX_RETRY_AFTER_SECONDS` it gives up) or 0.5 s,
1 s, 2 s … (at most 8 s, with jitter). A refused address is never retried.

Failures become `ProviderError` with a stable code; a message quotes at most a short, redacted
part of what the endpoint said, never the key.
"""

import codecs
import functools
import ipaddress
import json
import math
import os
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import TypeVar
from urllib.parse import urlsplit

import httpcore2
import httpx2

from foundry.db.text import UNSTORABLE
from foundry.runtime.network import (
    FetchError,
    NetworkPolicy,
    _resolve,
    address_refusal,
    deadline_backend,
    exchange_deadline,
    resolver_bounded,
)
from foundry.runtime.providers import MAX_TOOL_CALL_ID, ProviderError

DEFAULT_TIMEOUT_SECONDS = 120.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES = 10
MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # what provider_settings_for admits; replies with long outputs
MAX_RETRY_AFTER_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 8.0
MAX_QUOTED_CHARS = 300
RETRIED_STATUSES = frozenset({408, 409, 429})
# Variables the vendor SDKs read on their own and would add to every tenant's requests.
AMBIENT_HEADER_VARIABLES = ("OPENAI_CUSTOM_HEADERS", "ANTHROPIC_CUSTOM_HEADERS")
_KEY_LIKE = re.compile(r"\b(?:sk|key|api)[-_][A-Za-z0-9_*.\-]{6,}", re.IGNORECASE)
_KEY_WINDOW = 6  # a quoted word sharing this many consecutive characters with the key is dropped
_SHORTEST_REDACTED = 4  # a shorter key: nothing the endpoint said is quoted

Resolver = Callable[[str, int], list[str]]
T = TypeVar("T")
# An Azure OpenAI api-version or deployment name: one segment of the request's URL path, which the
# SDK puts there as it is — no '/', '?' or '%', and not '.' or '..', which would leave the segment.
URL_NAME = re.compile(r"^(?!\.+\Z)[A-Za-z0-9._-]+\Z")


@dataclass(frozen=True)
class Connection:
    """How to reach one tenant's account at a provider."""

    api_key: str = field(repr=False)
    base_url: str
    organization: str | None = None
    api_version: str | None = None
    deployment: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES

    @classmethod
    def of(cls, provider: str, credentials: Mapping | None, *, default_base_url: str) -> "Connection":
        """The connection in `credentials`, or ProviderError `provider_credentials_missing`."""
        api_key = (credentials or {}).get("api_key")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ProviderError(
                "provider_credentials_missing",
                f"No {provider} credentials are configured for this workspace; an admin adds them in "
                "Settings → Model providers.",
            )
        assert credentials is not None
        for name in AMBIENT_HEADER_VARIABLES:
            if os.environ.get(name):
                raise ProviderError(
                    "provider_environment_unsafe",
                    f"The platform's environment sets {name}, which the {provider} SDK would add to every "
                    "workspace's requests; the operator must unset it.",
                )

        def text(key: str) -> str | None:
            value = credentials.get(key)
            return value.strip() if isinstance(value, str) and value.strip() else None

        timeout, retries = credentials.get("timeout_seconds"), credentials.get("max_retries")
        timeout = DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout
        retries = DEFAULT_MAX_RETRIES if retries is None else retries
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout < math.inf:
            raise ProviderError("provider_settings_invalid", "timeout_seconds must be a positive number of seconds.")
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES:
            raise ProviderError("provider_settings_invalid", f"max_retries must be a whole number 0-{MAX_RETRIES}.")
        return cls(
            api_key=api_key.strip(),
            base_url=text("base_url") or default_base_url,
            organization=text("organization"),
            api_version=text("api_version"),
            deployment=text("deployment"),
            timeout_seconds=float(timeout),
            max_retries=retries,
        )

    @property
    def label(self) -> str:
        """How messages name the endpoint: its host, never anything of the URL's userinfo or path."""
        try:
            parts = urlsplit(self.base_url)
            host, port = parts.hostname or "?", parts.port
        except ValueError:
            return "?"
        return f"{host}:{port}" if port else host


# --- HTTP -----------------------------------------------------------------------------------


class Refused(httpx2.TransportError):
    """The transport refuses a request or a response (never retried; unwrapped by `call_error`)."""

    def __init__(self, error: ProviderError):
        super().__init__(error.message)
        self.error = error


class _BoundedStream(httpx2.SyncByteStream):
    """A response body cut at `limit` bytes and at `deadline` (time.monotonic)."""

    def __init__(self, inner: httpx2.SyncByteStream, limit: int, deadline: float):
        self.inner, self.limit, self.deadline = inner, limit, deadline

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        chunks = iter(self.inner)
        while True:
            with exchange_deadline(self.deadline):  # each read of the body waits at most until then
                chunk = next(chunks, None)
            if chunk is None:
                return
            size += len(chunk)
            if size > self.limit:
                raise Refused(_too_large(self.limit))
            if time.monotonic() > self.deadline:
                raise httpx2.ReadTimeout("The response did not arrive in time.")
            yield chunk

    def close(self) -> None:
        self.inner.close()


def _too_large(limit: int) -> ProviderError:
    return ProviderError("provider_response_too_large", f"The endpoint's response is larger than {limit:,} bytes.")


def _decodable(charset: str) -> bool:
    """Whether text in `charset` can be read as httpx reads it (its decoder, errors="replace"):
    Python knows codecs that are no text encoding (rot13, base64: TypeError, AssertionError) or
    refuse "replace" (idna, undefined: UnicodeError). A name it does not know is fine: httpx then
    falls back to its default."""
    try:
        info = codecs.lookup(charset)
    except LookupError:
        return True
    if not getattr(info, "_is_text_encoding", True):
        return False
    try:
        codecs.getincrementaldecoder(charset)(errors="replace").decode(b"\xff\xfe{}", final=True)
    except (ValueError, TypeError, AssertionError, LookupError):  # UnicodeError is a ValueError
        return False
    return True


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    """httpx2's verifying context (the system's trust store, not SSL_CERT_*), made once: each one
    reads the whole store, ~35 ms, and every provider client made two. Safe to share."""
    return httpx2.create_ssl_context(trust_env=False)


class GuardedTransport(httpx2.BaseTransport):
    """Checks and pins the address of every request, and bounds its response (module docstring)."""

    def __init__(self, policy: NetworkPolicy, *, resolver: Resolver = _resolve):
        self.policy = policy
        self.resolver = resolver
        context = _verifying_context()
        self.inner = httpx2.HTTPTransport(verify=context, trust_env=False)
        # Connecting and the answer's head by the attempt's deadline, however slowly they come
        # (httpx's timeouts are per operation); the body is cut at it by _BoundedStream.
        self.inner._pool = httpcore2.ConnectionPool(ssl_context=context, network_backend=deadline_backend(httpcore2))

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        started = time.monotonic()
        url = request.url
        host = url.host.lower().rstrip(".")
        port = url.port or (443 if url.scheme == "https" else 80)
        if url.scheme not in ("http", "https") or not host:
            raise Refused(ProviderError("provider_url_refused", "The base URL must be an http(s) URL."))
        deadline = started + _attempt_seconds(request)  # name resolution counts against it too
        ip = self._checked_address(host, port, deadline)
        if url.scheme == "http" and address_refusal(ip, NetworkPolicy()) is None:
            raise Refused(
                ProviderError("provider_url_refused", "Use https: the API key would cross the internet in clear.")
            )
        request.url = url.copy_with(host=str(ip))
        if url.scheme == "https" and not _is_ip(host):
            request.extensions = {**request.extensions, "sni_hostname": host}
        request.headers["Accept-Encoding"] = "identity"  # the size bound applies to what is decoded
        with exchange_deadline(deadline):
            response = self.inner.handle_request(request)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        length = response.headers.get("content-length", "")
        refusal = None
        if encoding not in ("", "identity"):
            refusal = ProviderError(
                "provider_bad_response", f"The endpoint sent a {encoding!r}-encoded response; it was asked for none."
            )
        elif length.isdigit() and int(length) > self.policy.max_response_bytes:
            refusal = _too_large(self.policy.max_response_bytes)
        if refusal is not None:
            response.close()
            raise Refused(refusal)
        response.stream = _BoundedStream(response.stream, self.policy.max_response_bytes, deadline)
        charset = response.charset_encoding
        if charset is not None and not _decodable(charset):
            response.encoding = "utf-8"  # the SDKs read an error answer's text in the charset it names
        return response

    def _checked_address(self, host: str, port: int, deadline: float):
        resolve = resolver_bounded(self.resolver, deadline, max(0.0, deadline - time.monotonic()))
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
        except FetchError:  # no answer by the attempt's deadline
            raise Refused(
                ProviderError("provider_timeout", f"Resolving {host!r} took longer than the call may.")
            ) from None
        except (OSError, UnicodeError, ValueError):
            raise Refused(ProviderError("provider_unreachable", f"Could not resolve {host!r}.")) from None
        if not addresses:
            raise Refused(ProviderError("provider_unreachable", f"{host!r} has no address."))
        for ip in addresses:
            refused = address_refusal(ip, self.policy)
            if refused:
                raise Refused(
                    ProviderError(
                        "provider_url_refused",
                        f"{host!r} resolves to {ip}, a {refused} address; the platform does not let model "
                        "providers reach it (FOUNDRY_PROVIDER_ALLOWED_NETWORKS).",
                    )
                )
        return addresses[0]

    def close(self) -> None:
        self.inner.close()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _attempt_seconds(request: httpx2.Request) -> float:
    """The attempt's whole time: the largest of the timeouts the SDK set on the request."""
    values = [v for v in (request.extensions.get("timeout") or {}).values() if isinstance(v, int | float)]
    return max(values, default=DEFAULT_TIMEOUT_SECONDS)


def http_client(policy: NetworkPolicy) -> httpx2.Client:
    return httpx2.Client(transport=GuardedTransport(policy), trust_env=False, follow_redirects=False)


# --- retries --------------------------------------------------------------------------------


def call_with_retries(
    attempt: Callable[[float], T],
    *,
    connection: Connection,
    sdk: ModuleType,
    label: str,
    timeout: float | None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`attempt(seconds)` until it succeeds, as the module docstring says; else its ProviderError.

    `timeout` is the caller's whole budget (the run's remaining time); None: only each attempt
    is bounded, by the connection's timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for number in range(connection.max_retries + 1):
        budget = connection.timeout_seconds
        if deadline is not None:
            budget = min(budget, deadline - time.monotonic())
        if budget <= 0:
            raise ProviderError("provider_timeout", f"{label} did not answer in time.")
        try:
            return attempt(budget)
        except sdk.APIError as exc:
            error = call_error(exc, sdk=sdk, label=label, connection=connection)
            wait = retry_wait(exc, sdk=sdk, number=number)
            last = number == connection.max_retries
            if wait is None or last or (deadline is not None and time.monotonic() + wait >= deadline):
                raise error from None
            sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises


def retry_wait(exc: Exception, *, sdk: ModuleType, number: int) -> float | None:
    """Seconds to wait before retrying after `exc` (attempt `number`, from 0), or None: do not."""
    if isinstance(exc, sdk.APIConnectionError):  # timeouts included
        return None if isinstance(exc.__cause__, Refused) else _backoff(number)
    if not isinstance(exc, sdk.APIStatusError):
        return None
    headers = exc.response.headers
    # The endpoint may forbid a retry (x-should-retry: false), never widen the statuses retried.
    if headers.get("x-should-retry", "").lower() == "false":
        return None
    if exc.status_code not in RETRIED_STATUSES and exc.status_code < 500:
        return None
    after = _retry_after(headers)
    if after is None:
        return _backoff(number)
    return after if after <= MAX_RETRY_AFTER_SECONDS else None


def _retry_after(headers: Mapping) -> float | None:
    """Seconds the endpoint asks to wait: `retry-after-ms`, or `retry-after` in seconds or as an
    HTTP date (RFC 9110)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        text = headers.get(name, "")
        try:
            value = float(text)
        except ValueError:
            if name == "retry-after" and text:
                return _retry_after_date(text)
            continue
        if value >= 0 and not math.isnan(value):  # infinite: longer than any wait, so no retry
            return value / scale
    return None


def _retry_after_date(text: str) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP date is in GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _backoff(number: int) -> float:
    return min(0.5 * 2**number, MAX_BACKOFF_SECONDS) * (1 - 0.25 * random.random())  # noqa: S311


# --- errors ---------------------------------------------------------------------------------


def redact(text: str, secret: str) -> str:
    """`text` without `secret` (also as JSON writes it), any word sharing part of it, or anything
    shaped like an API key, cut to a readable length. Nothing at all for a secret of 1 to 3
    characters, which no replacing tells apart from the words around it."""
    if secret and len(secret) < _SHORTEST_REDACTED:
        return ""
    # Only the beginning is ever quoted: what is scanned is bounded too (an error body may be
    # megabytes of words, each compared with every stretch of the key), cut at a word's end.
    limit = 4 * MAX_QUOTED_CHARS + 2 * len(secret)
    if len(text) > limit:
        text = text[:limit].rsplit(None, 1)[0]
    forms = {secret, json.dumps(secret)[1:-1]} if secret else set()  # a body without a message is quoted as JSON
    for form in forms:
        text = text.replace(form, "[redacted]")
    text = _KEY_LIKE.sub("[redacted]", text)
    windows = {form[i : i + _KEY_WINDOW] for form in forms for i in range(max(0, len(form) - _KEY_WINDOW + 1))}
    words = ["[redacted]" if any(w in word for w in windows) else word for word in text.split()]
    text = " ".join(words)
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 1] + "…"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_cleaned(value):
    """A string cleaned; a dict or list as an empty one of its kind (filled by `text_clean`)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return value


def text_clean(value):
    """`value` (JSON) with lone UTF-16 surrogates, which JSON may carry but no request can send
    back, replaced by U+FFFD in every string, keys included. Walked without recursion: JSON
    nested as deep as `json.loads` reads is more than Python's stack holds two frames a level."""
    top = _text_cleaned(value)
    pending = [(value, top)] if isinstance(value, dict | list) else []
    while pending:
        source, copy = pending.pop()
        for key, item in source.items() if isinstance(source, dict) else enumerate(source):
            cleaned = _text_cleaned(item)
            if isinstance(item, dict | list):
                pending.append((item, cleaned))
            if isinstance(copy, dict):
                copy[_text_cleaned(key)] = cleaned
            else:
                copy.append(cleaned)
    return top


def tool_call_id(raw: object, seen: set, fallback: str) -> str:
    """A tool call's id: the endpoint's (NUL and lone surrogates replaced), unless it sent none, one too
    long, or one another call of the same answer has; else `fallback`, numbered on while taken,
    so no two calls of an answer share one (the second would count as answered, and never run).
    Added to `seen`."""
    # As a step's record stores it (NUL too replaced): a recorded call is found again by its id.
    call_id = UNSTORABLE.sub("\ufffd", raw) if isinstance(raw, str) else None
    if not call_id or len(call_id) > MAX_TOOL_CALL_ID or call_id in seen:
        call_id, number = fallback, 1
        while call_id in seen:
            number += 1
            call_id = f"{fallback}_{number}"
    seen.add(call_id)
    return call_id


def _said(body: object) -> str:
    """What the endpoint said in an error body ({"error": {"message": …}} for both vendors)."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
        return json.dumps(body)[:MAX_QUOTED_CHARS]
    return body if isinstance(body, str) else ""


def call_error(exc: Exception, *, sdk: ModuleType, label: str, connection: Connection) -> ProviderError:
    """The ProviderError for one of the SDK's APIError."""
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError("provider_timeout", f"{label} did not answer in time.")
    if isinstance(exc, sdk.APIConnectionError):
        if isinstance(exc.__cause__, Refused):
            return exc.__cause__.error
        return ProviderError("provider_unreachable", f"{label} could not be reached.")
    if isinstance(exc, sdk.APIStatusError):
        return status_error(exc.status_code, exc.response.headers, exc.body, label=label, connection=connection)
    return bad_response(label)


def status_error(status: int, headers: Mapping, body: object, *, label: str, connection: Connection) -> ProviderError:
    if status in (401, 403):
        return ProviderError(
            "provider_auth_failed",
            f"{label} refused the credentials (HTTP {status}); check the API key in Settings → Model providers.",
        )
    said = redact(_said(body), connection.api_key)
    suffix = f": {said}" if said else "."
    if status == 429:
        after = _retry_after(headers)
        wait = f" (retry after {after:g} s)" if after is not None else ""
        return ProviderError("provider_rate_limited", f"{label} refused: rate limit or quota reached{wait}{suffix}")
    if status >= 500:
        return ProviderError("provider_server_error", f"{label} failed (HTTP {status}){suffix}")
    if 300 <= status < 400:
        return ProviderError("provider_bad_response", f"{label} answered with a redirect (HTTP {status}).")
    return ProviderError("provider_request_refused", f"{label} refused the request (HTTP {status}){suffix}")


def bad_response(label: str, what: str = "something that is not a valid response") -> ProviderError:
    return ProviderError("provider_bad_response", f"{label} answered with {what}.")


def request_parameters(label: str, parameters: Mapping, fields: Mapping[str, str]) -> dict:
    """The manifest's model parameters as request fields; an unknown one is refused, not dropped."""
    unknown = sorted(set(parameters) - set(fields))
    if unknown:
        raise ProviderError(
            "provider_parameter_unsupported",
            f"{label} does not take the parameter(s) {', '.join(unknown)}; it takes {', '.join(sorted(fields))}.",
        )
    return {fields[name]: value for name, value in parameters.items()}


def json_body(response, label: str) -> Mapping:
    """The JSON object an SDK's raw response carries, or ProviderError `provider_bad_response`."""
    try:
        body = json.loads(response.http_response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past Python's stack
        raise bad_response(label, "malformed JSON") from None
    if not isinstance(body, Mapping):
        raise bad_response(label, "JSON that is not an object")
    return body


# More tokens than any model reads or writes in one call: a count above it is no count (and the
# sums of a call's counts stay within the 32-bit columns steps keep them in).
MAX_TOKENS_PER_CALL = 100_000_000


def integer(value: object) -> int | None:
    """A token count a provider reported, or None when it is none (not a whole number, negative,
    or past MAX_TOKENS_PER_CALL)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKENS_PER_CALL:
        return value
    return None


def text_or_none(value: object, limit: int = 200) -> str | None:
    """A provider's label (a response id, a finish reason) if it is text, cut to `limit`."""
    return value[:limit] if isinstance(value, str) else None

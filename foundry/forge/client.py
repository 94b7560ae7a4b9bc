"""The REST API of one tenant host, as forge uses it: httpx wrapped thinly, errors made plain.

Every failure becomes a ForgeError with one line to print: unreachable server, refused token,
server fault (exit 2), or an ApiError for any other 4xx, which the command interprets.
"""

import ipaddress
import os
import re
import threading
import time
import urllib.request

import httpx

from foundry.forge import __version__
from foundry.forge.errors import ApiError, ForgeError

TIMEOUT_SECONDS = 30.0  # for the whole of one request and its answer
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # the API's answers are a few MiB at most (documents: 1 MiB)
# And at most this many JSON objects: 10 million `{}` fit in 32 MiB and took 4 GiB and a minute to
# parse; the API's largest pages (1,000 runs or steps) hold tens of thousands.
MAX_ANSWER_OBJECTS = 200_000
_RATE_LIMIT_RETRIES = 2
_RATE_LIMIT_MAX_WAIT = 5.0  # seconds; a longer Retry-After is reported instead of waited for


def loopback_route(request) -> None:
    """Send a request for a `*.localhost` host to 127.0.0.1, keeping its Host header and SNI name.

    RFC 6761 §6.3 makes every `.localhost` name loopback, but glibc resolves only `localhost`
    itself, so `http://acme.localhost:8000` (the development tenant address) would not resolve.
    Takes an httpx or an httpx2 request (the MCP SDK's client is httpx2); the Host header was set
    from the URL when the request was built, so only the address connected to changes.
    """
    host = request.url.host
    if host.removesuffix(".").endswith(".localhost"):
        request.extensions = {**request.extensions, "sni_hostname": host}
        request.url = request.url.copy_with(host="127.0.0.1")


def proxy_for(url) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY, as
    curl and pip read them), or None; never for loopback or `*.localhost` (the development server)."""
    host = url.host.removesuffix(".")
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(host):
        return None
    return proxies.get(url.scheme) or proxies.get("all")


class _LoopbackTransport(httpx.BaseTransport):
    """Connects to 127.0.0.1 for `*.localhost` hosts (see loopback_route), and through the
    environment's proxy where it names one (`proxy_for`; a client given its own transport, as
    tests give, takes no proxy from the environment)."""

    def __init__(self, inner: httpx.BaseTransport, *, env_proxies: bool = True):
        self._inner = inner
        self._env_proxies = env_proxies
        self._proxied: dict[str, httpx.BaseTransport] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = proxy_for(request.url) if self._env_proxies else None
        loopback_route(request)
        if proxy is None:
            return self._inner.handle_request(request)
        if proxy not in self._proxied:
            self._proxied[proxy] = httpx.HTTPTransport(proxy=proxy)
        return self._proxied[proxy].handle_request(request)

    def close(self) -> None:
        self._inner.close()
        for transport in self._proxied.values():
            transport.close()


def is_loopback(host: str) -> bool:
    """`localhost`, a `*.localhost` name (RFC 6761) or a loopback address (a name's trailing dot
    aside: `localhost.` is the same name)."""
    host = host.removesuffix(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


_TOKEN_LIKE = re.compile(r"af_[0-9a-z]{6,}_|eyJ[\w-]{10,}")  # an API token; a JWT's header


def _shown(url: str) -> str:
    """`url` as an error may repeat it: what comes before an `@` may be a password, however the
    URL parses (`ci:Pass/word@host` has no user part to a parser: a scheme, then a path); and a
    value with no `scheme://`, or holding what looks like an API token, is not repeated at all:
    the token given where the URL goes (FOUNDRY_URL and FOUNDRY_TOKEN swapped in a CI job)."""
    if "://" not in url or _TOKEN_LIKE.search(url):
        return "(the value given, not repeated: it may be a token)"
    return repr(url) if "@" not in url else repr("…@" + url.rsplit("@", 1)[1])


def base_url(url: str) -> str:
    """The server's root URL, checked: https (http only to this machine: the token would cross
    the network in clear text), a host, no user name or password (the token is given on its
    own, never in the URL), no query; a trailing /api/v1, or /mcp (the MCP endpoint, which
    FOUNDRY_URL may name for `forge mcp`), is dropped."""
    try:
        parsed = httpx.URL(url.strip())
        host = parsed.host  # decoded from IDNA: a malformed xn-- label fails here
    except (httpx.InvalidURL, TypeError, UnicodeError) as exc:
        # Not the parser's quote of the URL: `https://ci:Pass/word@host` reads as port `Pass`.
        raise ForgeError("url_invalid", f"--url is not a URL ({_QUOTED.sub('…', str(exc))}).") from None
    shown = _shown(url)
    if parsed.userinfo:
        raise ForgeError(
            "url_invalid", "--url holds a user name or password: give the token with --token or FOUNDRY_TOKEN."
        )
    if parsed.query or parsed.fragment:  # not repeated: a token pasted there would land in CI logs
        raise ForgeError("url_invalid", "--url has a query or a fragment: write it like https://acme.foundry.example.")
    if parsed.scheme not in ("http", "https") or not host:
        raise ForgeError("url_invalid", f"--url {shown}: write it like https://acme.foundry.example.")
    if parsed.scheme == "http" and not is_loopback(host):
        raise ForgeError(
            "url_insecure",
            f"--url {shown}: plain http would send the token in clear text; use https (http only to localhost).",
        )
    path = parsed.path.rstrip("/")
    root = str(
        parsed.copy_with(path=path.removesuffix("/mcp") if path.endswith("/mcp") else path.removesuffix("/api/v1"))
    )
    return root.rstrip("/")


# The longest file name the API takes (ContentInput.filename): a deeper path is sent by its tail.
FILENAME_MAX = 255


def _sent_name(path: str) -> str:
    """The name a file goes to the server under (its problems come back naming it; forge's own
    messages keep the whole path): at most FILENAME_MAX characters, the path's end."""
    # A file name that is not UTF-8 (bytes Python keeps as lone surrogates) goes with U+FFFD for
    # what cannot be sent: JSON takes no lone surrogate.
    path = os.fsencode(path).decode("utf-8", "replace")
    return path if len(path) <= FILENAME_MAX else "…" + path[-(FILENAME_MAX - 1) :]


class Answer(dict):
    """A JSON object a server answered: a key forge needs and the answer lacks is said plainly
    (a proxy or another service at the URL), not met as an internal KeyError."""

    __slots__ = ("where",)  # no dict of its own beside the one it is: an answer may hold many

    def __init__(self, pairs=(), *, where: str = "The server answered"):
        # Built again by type(answer)(items) in copies (dataclasses.asdict): where has a default.
        super().__init__(pairs)
        self.where = where

    def __missing__(self, key):
        raise ForgeError("unexpected_response", f"{self.where} without “{key}” — is this a Foundry tenant URL?")


class Maybe:
    """In a shape: a key that may be absent or null."""

    def __init__(self, shape):
        self.shape = shape


# What forge reads of each answer (the rest passes through): a type, a nested object's shape, or a
# list of one shape. An answer of another shape is `unexpected_response`, never a TypeError later.
VERSION = {"kind": str, "name": str, "number": int}
DEPLOYMENT = {"agent": str, "version": int, "domain": Maybe({"name": str, "version": int})}
SHAPES = {
    "validate": {"valid": bool, "problems": [dict], "kind": Maybe(str), "name": Maybe(str)},
    "publish": {"version": VERSION},
    "document": {"latest_number": int},
    "version": {**VERSION, "content": dict, "source": str},
    "diff": {"changes": [{"action": Maybe(str), "what": Maybe(str), "name": Maybe(str)}], "text": str},
    "deploy": DEPLOYMENT,
    "migrate": {"deployment": {**DEPLOYMENT, "domain": {"name": str, "version": int}}, "changed": bool},
}


def misfit(value, shape, path: str = "") -> str | None:
    """What of `value` is not of `shape` ("without “a.b”", "with “a.b” of another type"), or None."""
    if isinstance(shape, Maybe):
        return None if value is None else misfit(value, shape.shape, path)
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"with “{path}” of another type"
        for key, inner in shape.items():
            at = f"{path}.{key}".lstrip(".")
            if key not in value:
                if isinstance(inner, Maybe):
                    continue
                return f"without “{at}”"
            if (found := misfit(value[key], inner, at)) is not None:
                return found
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"with “{path}” of another type"
        return next((found for i, item in enumerate(value) if (found := misfit(item, shape[0], f"{path}[{i}]"))), None)
    fits = type(value) is int if shape is int else isinstance(value, shape)  # True is no version number
    return None if fits else f"with “{path}” of another type"


def shaped(answer: dict, endpoint: str) -> dict:
    """`answer` once what forge reads of it has the types `SHAPES[endpoint]` says."""
    found = misfit(answer, SHAPES[endpoint])
    if found is not None:
        said = getattr(answer, "where", "The server answered")
        raise ForgeError("unexpected_response", f"{said} {found} — is this a Foundry tenant URL?")
    return answer


class Client:
    """One tenant's API with one token. Paths are relative to /api/v1/."""

    def __init__(self, url: str, token: str, *, timeout: float = TIMEOUT_SECONDS, transport=None):
        if not token or not token.strip():
            raise ForgeError("token_missing", "An API token is needed: --token or FOUNDRY_TOKEN.")
        self.url = base_url(url)
        self._timeout = timeout
        self._expired = threading.Event()
        self._http = httpx.Client(
            base_url=self.url + "/api/v1/",
            headers={
                "Authorization": f"Bearer {token.strip()}",
                "User-Agent": f"forge/{__version__}",
                "Accept": "application/json",
                # Uncompressed: a compressed answer is bounded by its size on the wire, not by what
                # it unpacks to in memory (32 KiB of zstd held 2 GiB).
                "Accept-Encoding": "identity",
            },
            timeout=timeout,
            transport=_LoopbackTransport(transport or httpx.HTTPTransport(), env_proxies=transport is None),
        )

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self._http.close()

    # --- the endpoints forge uses ------------------------------------------------------------

    def validate(self, content: str, filename: str) -> dict:
        body = self.call("POST", "validate", json={"content": content, "filename": _sent_name(filename)})
        if not (isinstance(body.get("valid"), bool) and isinstance(body.get("problems"), list)):
            # Not a Foundry verdict (a proxy or stub answering {}): never reported as "ok".
            raise ForgeError(
                "unexpected_response", f"{self.url} gave no verdict on {filename} — is this a Foundry tenant URL?"
            )
        return shaped(body, "validate")

    def publish(self, kind: str, content: str, filename: str, message: str | None) -> tuple[int, dict]:
        body = {"content": content, "filename": _sent_name(filename)}
        if message:
            body["message"] = message
        status, answer = self.call_status("POST", f"{kind}s", json=body)
        return status, shaped(answer, "publish")

    def document(self, kind: str, name: str) -> dict:
        return shaped(self.call("GET", f"{kind}s/{name}"), "document")

    def version(self, kind: str, name: str, number: int) -> dict:
        return shaped(self.call("GET", f"{kind}s/{name}/versions/{number}"), "version")

    def diff(self, kind: str, name: str, old: int, new: int) -> dict:
        return shaped(self.call("GET", f"{kind}s/{name}/diff", params={"from": old, "to": new}), "diff")

    def deploy(self, name: str, number: int) -> tuple[int, dict]:
        """(201 deployed now | 200 already live, the deployment)."""
        status, answer = self.call_status("POST", f"agents/{name}/deploy", json={"version": number})
        return status, shaped(answer, "deploy")

    def migrate(self, name: str, domain_version: int | None) -> dict:
        body = {"domain_version": domain_version} if domain_version else {}
        return shaped(self.call("POST", f"agents/{name}/migrate", json=body), "migrate")

    # --- plumbing ----------------------------------------------------------------------------

    def call(self, method: str, path: str, **kwargs) -> dict:
        return self.call_status(method, path, **kwargs)[1]

    def call_status(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        """(status, JSON body) of a 2xx answer; any other answer raises."""
        for attempt in range(_RATE_LIMIT_RETRIES + 1):
            response = self._send(method, path, **kwargs)
            wait = retry_after_seconds(response)
            if response.status_code != 429 or attempt == _RATE_LIMIT_RETRIES or wait > _RATE_LIMIT_MAX_WAIT:
                break
            time.sleep(wait)
        return response.status_code, self._body(response)

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        """The answer, read whole within TIMEOUT_SECONDS of asking (httpx's timeouts bound each
        read, not the whole: a server sending a byte at a time would hold forge for ever) and up to
        MAX_ANSWER_BYTES (a larger one is refused before it fills the memory)."""
        if self._expired.is_set():  # an earlier answer's time ran out: its connections are closed
            raise ForgeError("timeout", f"{self.url} did not answer within {self._timeout:g} s.")
        deadline = time.monotonic() + self._timeout
        response = None
        # The status line and headers too: a server sending them a line at a time would hold forge
        # as long as it likes. At the deadline its connections are closed under it.
        watchdog = threading.Timer(self._timeout, self._expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            response = self._http.send(self._http.build_request(method, path, **kwargs), stream=True)
            try:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                    raise self._too_large()
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):  # not asked for: refused before any of it is unpacked
                    raise ForgeError(
                        "unexpected_response",
                        f"{self.url} answered compressed ({encoding[:40]!r}), which forge did not ask for.",
                    )
                chunks, size = [], 0
                for chunk in response.iter_bytes():  # identity only (above): nothing is unpacked
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise self._too_large()
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the answer took too long", request=response.request)
                    chunks.append(chunk)
                response._content = b"".join(chunks)  # what Response.read() sets: read whole, now
            finally:
                response.close()
            return response
        except httpx.TimeoutException:
            raise ForgeError("timeout", f"{self.url} did not answer within {self._timeout:g} s.") from None
        except (httpx.InvalidURL, UnicodeError):  # a host name IDNA cannot encode, say
            raise ForgeError("url_invalid", f"{self.url} is not a URL forge can connect to.") from None
        except httpx.HTTPError as exc:
            if self._expired.is_set():  # the watchdog closed the connection under it
                raise ForgeError("timeout", f"{self.url} did not answer within {self._timeout:g} s.") from None
            reason = str(exc) or type(exc).__name__
            if response is not None:  # it answered, then the answer broke off: what was asked may be done
                raise ForgeError(
                    "connection_failed", f"{self.url} answered, but the answer was cut off: {reason}."
                ) from None
            raise ForgeError("connection_failed", f"Cannot reach {self.url}: {reason}.") from None
        finally:
            watchdog.cancel()

    def _expire(self) -> None:
        """The answer's time is up: its connection closed (the client is done with: forge stops)."""
        self._expired.set()
        self._http.close()

    def _too_large(self) -> ForgeError:
        return ForgeError(
            "response_too_large",
            f"{self.url} answered more than {MAX_ANSWER_BYTES // 2**20} MiB — is this a Foundry URL?",
        )

    def _body(self, response: httpx.Response) -> dict:
        status = response.status_code
        where = f"{self.url} answered {status} to {response.request.method} {response.request.url.path}"
        if response.content.count(b"{") > MAX_ANSWER_OBJECTS:  # each parsed object costs ~200 bytes and µs
            raise ForgeError(
                "response_too_large",
                f"{where} with more than {MAX_ANSWER_OBJECTS:,} JSON objects — is this a Foundry URL?",
            )
        try:
            body = response.json(object_pairs_hook=lambda pairs: Answer(pairs, where=where))
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
            body = None
        error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
        if 300 <= status < 400:  # not followed: the token is for this URL, not for wherever it points
            to = response.headers.get("location")
            raise ForgeError(
                "unexpected_response",
                f"{where}, a redirect{f' to {to}' if to else ''}; forge does not follow redirects"
                " — is this the workspace's URL?",
            )
        if 200 <= status < 300 and isinstance(body, dict):
            return body
        if body is None or (status >= 400 and error is None) or (200 <= status < 300):  # a 2xx, not an object
            if status == 429 or status >= 500:  # a proxy's own page in front of a server: it says what it means
                raise refusal(
                    self.url, status, {"code": "error", "message": "(no Foundry answer)"}, retry_after_seconds(response)
                )
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise ForgeError(
                "unexpected_response",
                f"{self.url} answered {status} with {kind} to {response.request.method} {response.request.url.path}"
                " — is this a Foundry tenant URL?",
            )
        raise refusal(self.url, status, error, retry_after_seconds(response))


def refusal(url: str, status: int, error: dict, retry_after: float) -> ForgeError:
    """What a Foundry error answer (`{"error": {"code", "message"}}` at a 4xx/5xx status) means:
    refused credentials, rate limit and server faults stop forge (ForgeError); any other 4xx is an
    ApiError for the command to interpret."""
    code, message = str(error.get("code", "error")), str(error.get("message", "")).strip()
    if status == 401:
        return ForgeError("unauthenticated", f"{url} refused the token: {message or code}")
    if status == 403:
        return ForgeError("permission_denied", f"{url} refused: {message or code}")
    if status == 429:
        return ForgeError("rate_limited", f"{url} is rate limiting this token; retry in {retry_after:g} s.")
    if status >= 500:
        return ForgeError("server_error", f"{url} failed ({status} {code}): {message}")
    return ApiError(status, code, message or code, details=error.get("details"))


def retry_after_seconds(response) -> float:
    """Retry-After of an httpx or httpx2 response, in seconds (1 if absent or not a number)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0

"""Read-only git smart HTTP: `git clone http://<tenant host>/git/foundry.git` with an API token.

git sends the token as the password of HTTP Basic auth (any user name) after a 401 challenge,
or as `Authorization: Bearer` with `git -c http.extraHeader=...`. Only upload-pack (fetch and
clone) is served; pushes are refused — history changes only through publishing. Each request
spends the token's and the workspace's rates, as an API request does (429 with Retry-After).
"""

import base64
import gzip
import io
import zlib
from collections import deque

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from dulwich import server as dulwich_server
from dulwich.objects import Commit, Tag
from dulwich.protocol import CAPABILITY_FILTER, CAPABILITY_MULTI_ACK, ReceivableProtocol
from dulwich.server import DictBackend, UploadPackHandler

from apps.accounts.access import access_denied_record
from apps.accounts.permissions import Permission
from apps.audit.services import audit_record
from apps.catalog.history import history_build
from apps.tenants.limits import request_admit
from apps.tokens.models import Scope, TokenPrincipal
from apps.tokens.services import token_authenticate
from foundry.metrics import rate_limited

SERVICE = "git-upload-pack"
MAX_REQUEST = 4 * 1024 * 1024
# dulwich's multi_ack negotiation walks the wants again for every `have` (time ~ haves²: 40,000 in a
# 6 KB gzip body held a worker 25 s). A client that already fetched sends its tip, one have; a
# catalog's whole history is a few thousand commits.
MAX_HAVES = 4096
# Never stored, by the client or any cache between: a workspace's history, read with its token
# (RFC 9111 §3.5 lets a shared cache keep an answer to a request with credentials when it says
# `must-revalidate`, as git's own "no-cache" headers do).
_NO_CACHE = {"Cache-Control": "no-store, private", "Pragma": "no-cache"}


def _credential(request: HttpRequest) -> str:
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    kind = kind.lower()  # the scheme is case-insensitive (RFC 9110)
    if kind == "bearer":
        return value.strip()
    if kind == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return ""
        return password or user
    return ""


def _refuse(request: HttpRequest, status: int, code: str, message: str, headers=None) -> HttpResponse:
    """Plain text: git prints it to the user as is."""
    response = HttpResponse(
        f"{code}: {message}\n", status=status, content_type="text/plain; charset=utf-8", headers=headers
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="Agent Foundry git", charset="UTF-8"'
    return response


def _admitted(request: HttpRequest) -> tuple[TokenPrincipal, dict[str, str]] | HttpResponse:
    """The request's token and the rate limit headers of its counted request, or the refusal.
    Every authenticated request spends a unit first, as on the API: one its token may not make
    (403) is counted too, and every counted answer carries the headers."""
    if getattr(request, "tenant", None) is None:
        return _refuse(request, 404, "not_found", "There is nothing at this address.")
    raw = _credential(request)
    token = token_authenticate(raw, request=request) if raw else None
    if token is None:
        message = "Use an API token as the password." if not raw else "The token is not valid, expired or revoked."
        return _refuse(request, 401, "not_authenticated" if not raw else "invalid_token", message)
    principal = TokenPrincipal(token)
    decision = request_admit(tenant_id=request.tenant.pk, principal=principal, write=False)
    if decision.unavailable:
        message = "Requests cannot be counted for a moment; try again shortly."
        return _refuse(request, 503, "rate_limiter_unavailable", message, decision.headers())
    if not decision.allowed:
        rate_limited(request.tenant.schema_name, "git")
        wait = decision.headers()["Retry-After"]
        return _refuse(request, 429, "rate_limited", f"Too many requests; wait {wait} s.", decision.headers())
    limit_headers = decision.headers()
    allowed = all(principal.has_permission(p) for p in (Permission.DOMAINS_VIEW, Permission.AGENTS_VIEW))
    if not (allowed and principal.has_scope(Scope.READ)):
        access_denied_record(request, principal, permission="domains.view, agents.view", scope=str(Scope.READ))
        return _refuse(request, 403, "permission_denied", "This token may not read domains and agents.", limit_headers)
    return principal, limit_headers


class _UploadPack(UploadPackHandler):
    """dulwich's upload-pack without `filter`: a partial clone (`--filter=blob:none`) would leave
    out blobs that this stateless server cannot serve afterwards (no `allow-*-sha1-in-want`), and
    its checkout failed; not advertised, git ignores the filter and clones in full (the history is
    small: the workspace's manifests). Nor plain `multi_ack` (git uses `multi_ack_detailed`):
    dulwich walks every want back through the history at each known have until all are
    satisfied — never, when a want is an ancestor of the have — so 4,096 haves on a 15-version
    catalog held a worker 7 s, on 200 versions minutes. A client asking for it is refused (400)."""

    def capabilities(self) -> list[bytes]:
        left_out = (CAPABILITY_FILTER, CAPABILITY_MULTI_ACK)
        return [capability for capability in super().capabilities() if capability not in left_out]

    def set_client_capabilities(self, caps) -> None:
        # git asks for `filter` all the same (it warns "filtering not recognized by server,
        # ignoring", then sends no filter): taken as not asked, not refused as unadvertised.
        super().set_client_capabilities([capability for capability in caps if capability != CAPABILITY_FILTER])

    @property
    def filter_spec(self) -> None:
        return None

    @filter_spec.setter
    def filter_spec(self, spec) -> None:
        """A `filter` line sent all the same is read (a malformed one is refused) and not applied:
        the pack is whole (applied, it left out what this server cannot serve afterwards)."""


def _all_wants_satisfied(store, haves, wants) -> bool:
    """dulwich's `_all_wants_satisfied`, with one walk for all the wants: whether each reaches a
    have through parents no older than the oldest have. dulwich walked back from each want on its
    own, sharing nothing: the first round of `git fetch --tags` from an old clone (every tag
    wanted, the old commit had) took time in wants x history, 11-18 s at 1,000 versions."""
    haves = set(haves)
    times = [c.commit_time for c in (store[h] for h in haves) if isinstance(c, Commit)]
    earliest = min(times) if times else 0
    children: dict[bytes, list[bytes]] = {}
    known, pending = set(wants), deque(wants)
    while pending:
        commit = store[pending.popleft()]
        if not isinstance(commit, Commit):
            continue
        for parent in commit.parents:
            if store[parent].commit_time < earliest:
                continue  # as dulwich: no walk past the oldest have
            children.setdefault(parent, []).append(commit.id)
            if parent not in known:
                known.add(parent)
                pending.append(parent)
    reaching = known & haves  # and every commit some of them are ancestors of, within the walk
    pending = deque(reaching)
    while pending:
        for child in children.get(pending.popleft(), ()):
            if child not in reaching:
                reaching.add(child)
                pending.append(child)
    return all(want in reaching for want in wants)


def _find_shallow(store, heads, depth: int) -> tuple[set, set]:
    """dulwich's `find_shallow`, each commit walked once, at the least depth it is reached at
    (breadth first). dulwich kept a walk state per commit and depth: each wanted tag reaches the
    same commits at other depths, so `deepen 2147483647` with every tag wanted (`git fetch
    --unshallow`) walked the history once per tag, in time and memory (217 MiB at 2,000
    versions). The shallow commits it answers (shallow less not-shallow) are the same."""
    least: dict[bytes, int] = {}
    pending: deque[bytes] = deque()
    for head in heads:
        obj = store[head]
        while isinstance(obj, Tag):
            obj = store[obj.object[1]]
        if isinstance(obj, Commit) and obj.id not in least:
            least[obj.id] = 1
            pending.append(obj.id)
    shallow, not_shallow = set(), set()
    while pending:
        sha = pending.popleft()
        if least[sha] >= depth:
            shallow.add(sha)
            continue
        not_shallow.add(sha)
        for parent in store[sha].parents:
            if parent not in least:
                least[parent] = least[sha] + 1
                pending.append(parent)
    return shallow, not_shallow


# This module is dulwich's only server here: its negotiation uses these two by their module names.
dulwich_server._all_wants_satisfied = _all_wants_satisfied
dulwich_server.find_shallow = _find_shallow


def _handler(proto: ReceivableProtocol, *, advertise: bool) -> UploadPackHandler:
    backend = DictBackend({"/": history_build()})
    return _UploadPack(backend, ["/"], proto, stateless_rpc=True, advertise_refs=advertise)


def _wants_once(body: bytes) -> tuple[bytes, int]:
    """The request with each wanted commit asked for once, and how many it asks for. The
    negotiation walks every want line again for each have: one want repeated 75,000 times beside
    4,096 haves (under 4 MiB) held a worker 11 s. git itself repeats one or two (a branch and HEAD
    name the same commit), and a clone wants one per ref. A stream that is no list of pkt-lines
    ending in a flush is passed on as it is, for dulwich to refuse."""
    kept, seen, at = [], set(), 0
    while at + 4 <= len(body):
        try:
            size = int(body[at : at + 4], 16)
        except ValueError:
            break
        if size in (0, 1):  # the flush (or a delim-pkt, which dulwich reads as one) that ends the wants
            return b"".join(kept) + body[at:], len(seen)
        if size < 4 or at + size > len(body):
            break
        line = body[at : at + size]
        at += size
        if line[4:9] == b"want ":
            wanted = line[9:49]
            if wanted in seen:
                continue
            seen.add(wanted)
        kept.append(line)
    return body, len(seen)


@require_GET
def info_refs(request: HttpRequest) -> HttpResponse:
    admitted = _admitted(request)
    if isinstance(admitted, HttpResponse):
        return admitted
    limit_headers = admitted[1]
    if request.GET.get("service") != SERVICE:
        message = "This repository is read-only and served over smart HTTP only."
        return _refuse(request, 403, "read_only", message, limit_headers)
    out = io.BytesIO()
    proto = ReceivableProtocol(io.BytesIO().read, out.write)
    proto.write_pkt_line(f"# service={SERVICE}\n".encode())
    proto.write_pkt_line(None)
    _handler(proto, advertise=True).handle()
    return HttpResponse(
        out.getvalue(), content_type=f"application/x-{SERVICE}-advertisement", headers={**_NO_CACHE, **limit_headers}
    )


@csrf_exempt
@require_POST
def upload_pack(request: HttpRequest) -> HttpResponse:
    admitted = _admitted(request)
    if isinstance(admitted, HttpResponse):
        return admitted
    principal, limit_headers = admitted
    if request.content_type != f"application/x-{SERVICE}-request":
        message = f"Send application/x-{SERVICE}-request."
        return _refuse(request, 415, "unsupported_media_type", message, limit_headers)
    try:
        body = request.body  # also when sent chunked, as git does past http.postBuffer (foundry/wsgi.py)
    except RequestDataTooBig:  # past DATA_UPLOAD_MAX_MEMORY_SIZE: git prints this answer
        return _refuse(request, 413, "body_too_large", "The request is too large.", limit_headers)
    if request.headers.get("Content-Encoding") == "gzip":
        try:
            body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(MAX_REQUEST + 1)
        except (OSError, EOFError, zlib.error):
            return _refuse(request, 400, "invalid_body", "The request body is not valid gzip.", limit_headers)
    if len(body) > MAX_REQUEST:
        return _refuse(request, 413, "body_too_large", "The request is too large.", limit_headers)
    if body.count(b"have ") > MAX_HAVES:  # only `have` lines hold the word: the rest are ids and keywords
        message = f"More than {MAX_HAVES} commits offered (have lines): fetch into a fresh clone."
        return _refuse(request, 413, "too_many_haves", message, limit_headers)
    body, wanted = _wants_once(body)
    out = io.BytesIO()
    proto = ReceivableProtocol(io.BytesIO(body).read, out.write)
    # The history is read from the database first: a fault there is the server's (a 5xx), not the
    # client's request. Then the negotiation runs on it in memory, reading only what was sent.
    handler = _handler(proto, advertise=False)
    if wanted > len(set(handler.repo.get_refs().values())):
        message = "More commits asked for (want lines) than the repository has refs."
        return _refuse(request, 413, "too_many_wants", message, limit_headers)
    try:
        handler.handle()
    except Exception:  # noqa: BLE001 - a malformed pkt-line stream from the client
        message = "The git request could not be understood."
        return _refuse(request, 400, "invalid_git_request", message, limit_headers)
    audit_record(action="git.fetch", actor=principal, target="git/foundry.git", request=request)
    return HttpResponse(
        out.getvalue(), content_type=f"application/x-{SERVICE}-result", headers={**_NO_CACHE, **limit_headers}
    )


@csrf_exempt
def receive_pack(request: HttpRequest) -> HttpResponse:
    return _refuse(request, 403, "read_only", "This repository is read-only: publish through the API or forge.")

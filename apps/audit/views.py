"""Console pages of the audit trail: a workspace's (admins) and the platform's (operators, on the
operator host) — the events with an AIP-160 filter, one event in full, and the chain's status.

The status badge comes from `audit_verify`, which reads the whole chain, so its result is cached
per chain for VERIFY_CACHE_SECONDS (a busy chain is verified at most that often, however many
events arrive or people look), and a page without a cached result loads the badge afterwards
(htmx) instead of waiting for it. One verification of a chain runs at a time: a badge asked for
meanwhile says "verifying" and asks again shortly (ten people opening a large workspace's trail
at once made ten verifications of a million events, ~15 s of a server process each). Also here:
the public signing keys at /.well-known/foundry-audit-keys.json, on every host.
"""

import json
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from apps.accounts.access import operator_required, require_permission
from apps.accounts.permissions import Permission
from apps.audit.apis import EVENT_FILTERS, EVENTS, MAX_SEQ, events_of
from apps.audit.chain import event_hash
from apps.audit.models import PLATFORM, AuditActor, AuditEvent
from apps.audit.scope import chain_of_connection, rls_scope
from apps.audit.selectors import audit_actor_labels, audit_chain_base
from apps.audit.signing import public_keys
from apps.audit.verify import chain_status
from foundry.errors import error_response
from foundry.filtering import FilterError
from foundry.filtering.pagination import Page, paginate
from foundry.text import json_shown

EVENTS_PER_PAGE = 50
FILTER_EXAMPLE = 'action = "auth.login*" AND outcome = failure AND time > "2026-01-01T00:00:00Z"'


def _list_page(request: HttpRequest, *, chain: int, platform: bool) -> HttpResponse:
    filter_text = request.GET.get("filter", "")
    token = request.GET.get("page_token") or None
    error, status = None, 200
    try:
        with rls_scope(chain):
            page = paginate(
                events_of(chain).filter(EVENT_FILTERS.compile(filter_text).q),
                resource="console-events",
                ordering=EVENTS.ordering.default,
                filter_text=filter_text,
                page_size=EVENTS_PER_PAGE,
                page_token=token,
            )
            labels = audit_actor_labels(chain, {event.actor_id for event in page.items})
    except FilterError as e:
        error, status, page, labels = e, 400, Page([], ""), {}
    for event in page.items:
        event.actor_label = labels.get(event.actor_id, event.actor_id)
    context = {
        "platform": platform,
        "events": page.items,
        "next_page_token": page.next_page_token,
        "filter_text": filter_text,
        "query": urlencode({"filter": filter_text}) if filter_text else "",  # the pager's (console/_key_pager.html)
        "paged": bool(token),
        "error": error,
        "error_caret": " " * error.position + "^" if error and error.position is not None else "",
        "filter_example": FILTER_EXAMPLE,
        "chain_status": chain_status(chain, compute=False),
    }
    return render(request, "audit/events.html", context, status=status)


def _detail_page(request: HttpRequest, *, chain: int, seq: int, platform: bool) -> HttpResponse:
    if not 1 <= seq <= MAX_SEQ:
        return _no_event(request)
    with rls_scope(chain):
        near = [n for n in (seq - 1, seq, seq + 1) if 1 <= n <= MAX_SEQ]  # the last seq has no next
        around = {e.seq: e for e in events_of(chain).filter(seq__in=near)}
        event = around.get(seq)
        person = event and AuditActor.objects.filter(tenant_id=chain, actor_id=event.actor_id).first()
        base = audit_chain_base(chain)
    start = (base.first_seq, base.first_prev_hash)
    if event is None:
        return _no_event(request)
    previous, following = around.get(seq - 1), around.get(seq + 1)
    context = {
        "platform": platform,
        "event": event,
        "person": person,
        # Escaped as the run pages' JSON is: a claim or a name in the details cannot reorder the page.
        "details": json_shown(json.dumps(event.data, indent=2, sort_keys=True, ensure_ascii=False)),
        "hash_ok": _recompute(event, base.hash_tenant_id) == event.hash,
        "previous": previous,
        "following": following,
        "links_ok": previous.hash == event.prev_hash if previous else (seq, event.prev_hash) == start,
    }
    return render(request, "audit/events_detail.html", context)


def _recompute(event: AuditEvent, hash_tenant_id: int) -> str:
    fields = ("seq", "occurred_at", "actor_type", "actor_id", "action", "target_type", "target_id", "outcome")
    more = ("ip", "user_agent", "request_id", "details", "prev_hash")
    return event_hash(tenant_id=hash_tenant_id, **{name: getattr(event, name) for name in fields + more})


def _no_event(request: HttpRequest) -> HttpResponse:
    return error_response(request, status=404, code="not_found", message="There is no such event in this trail.")


def _badge(request: HttpRequest, chain: int) -> HttpResponse:
    return render(request, "audit/events_badge.html", {"chain_status": chain_status(chain)})


# --- a workspace's trail (tenant hosts) ----------------------------------------------------


@require_permission(Permission.AUDIT_VIEW)
@require_safe
def event_list(request: HttpRequest) -> HttpResponse:
    return _list_page(request, chain=chain_of_connection(), platform=False)


@require_permission(Permission.AUDIT_VIEW)
@require_safe
def event_detail(request: HttpRequest, seq: int) -> HttpResponse:
    return _detail_page(request, chain=chain_of_connection(), seq=seq, platform=False)


@require_permission(Permission.AUDIT_VIEW)
@require_safe
def chain_status_badge(request: HttpRequest) -> HttpResponse:
    return _badge(request, chain_of_connection())


# --- the platform's trail (operator host) ------------------------------------------------------


@operator_required
@require_safe
def platform_event_list(request: HttpRequest) -> HttpResponse:
    return _list_page(request, chain=PLATFORM, platform=True)


@operator_required
@require_safe
def platform_event_detail(request: HttpRequest, seq: int) -> HttpResponse:
    return _detail_page(request, chain=PLATFORM, seq=seq, platform=True)


@operator_required
@require_safe
def platform_chain_status_badge(request: HttpRequest) -> HttpResponse:
    return _badge(request, PLATFORM)


# --- public keys (every host) ------------------------------------------------------------------


@require_safe
@cache_control(public=True, max_age=3600)
def audit_keys(request: HttpRequest) -> JsonResponse:
    """The public keys that verify signed checkpoints: anyone may check a trail with them alone."""
    keys = [{"key_id": key_id, "alg": "Ed25519", "public_key": key} for key_id, key in public_keys().items()]
    return JsonResponse({"keys": keys})

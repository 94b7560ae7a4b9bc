"""Console pages for domains (DIS) and agents: versions, source, diff, rollback, deploy, migrate, editor.

Each kind has its own set of views (`kind_views`) so that every view declares the one permission
it needs: reading a domain needs domains.view, publishing an agent needs agents.edit, and so on.
Every write goes through apps.catalog.services; a ServiceError is shown on the page, never a 500.
"""

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import messages
from django.db.models import F
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.access import require_permission
from apps.accounts.permissions import Permission
from apps.catalog.models import Document, Kind, Version
from apps.catalog.selectors import documents_listed, without_version_bodies
from apps.catalog.services import (
    EDIT,
    DocumentInvalid,
    agent_deploy,
    agent_migrate,
    document_validate,
    version_diff,
    version_get,
    version_publish,
    version_rollback,
)
from foundry.errors import ServiceError, error_response
from foundry.manifests import Problem, Validated
from foundry.manifests.loader import MAX_BYTES
from foundry.pages import page_of
from foundry.text import json_shown, text_shown

VIEW = {Kind.DOMAIN: Permission.DOMAINS_VIEW, Kind.AGENT: Permission.AGENTS_VIEW}
PLURAL = {Kind.DOMAIN: "domains", Kind.AGENT: "agents"}
# Longer listings are cut here: a 1 MiB document of blank lines must not become a million table rows.
MAX_LISTED_LINES = 5000


# --- view-only helpers ------------------------------------------------------------------------


@dataclass
class SourceLine:
    number: int
    text: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def shown(self) -> str:
        """The line as the page draws it: a text-direction or control character escaped
        (`\\u202e`), so no line reads other than it is written (Trojan Source)."""
        return text_shown(self.text)

    @property
    def marks(self) -> list[dict]:
        """Each problem with the spaces that put a caret under its column, in the line as shown."""
        return [
            {"problem": p, "pad": " " * len(text_shown(self.text[: min(max(p.column - 1, 0), len(self.text))]))}
            for p in self.problems
        ]


@dataclass
class Listing:
    """A YAML source with line numbers, each problem beside its line; `unplaced` are the rest."""

    lines: list[SourceLine]
    unplaced: list[Problem]
    truncated: bool = False

    @property
    def placed(self) -> list[Problem]:
        return [p for line in self.lines for p in line.problems]


def listing(text: str, problems: list[Problem] = ()) -> Listing:
    by_line: dict[int, list[Problem]] = defaultdict(list)
    for problem in problems:
        by_line[problem.line].append(problem)
    rows = text.splitlines()
    shown = rows[:MAX_LISTED_LINES]
    lines = [SourceLine(n, row, by_line.pop(n, [])) for n, row in enumerate(shown, 1)]
    unplaced = [p for n in sorted(by_line) for p in by_line[n]]
    return Listing(lines, unplaced, truncated=len(rows) > len(shown))


def _text_of(source: str | bytes) -> str:
    """The source as text for the editor and the listing ('' when it is not UTF-8 or too large)."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            return ""
    return source if len(source) <= MAX_BYTES else ""


def _value(value) -> str:
    """A changed value as the page shows it (direction and control characters escaped)."""
    if value is None:
        return ""
    return (
        text_shown(value)
        if isinstance(value, str)
        else json_shown(json.dumps(value, sort_keys=True, ensure_ascii=False))
    )


def _changes(diff) -> list[dict]:
    rows = []
    for change in diff.changes:
        row = change.as_dict()
        shown = {"name": text_shown(row["name"])} if isinstance(row.get("name"), str) else {}
        rows.append({**row, **shown, "before": _value(row.get("before")), "after": _value(row.get("after"))})
    return rows


def _diff_lines(text: str) -> list[tuple[str, str]]:
    """(css class, line) for each line of a unified diff: split at "\n" only, as `text_diff`
    wrote it (str.splitlines also breaks at a CR, NEL, U+2028 that YAML reads as a line break,
    and a line added after one showed as unchanged context)."""
    rows = []
    for line in text.removesuffix("\n").split("\n") if text else ():
        if line.startswith(("+++", "---")):
            css = "file"
        elif line.startswith("@@"):
            css = "hunk"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        else:
            css = "ctx"
        rows.append((css, text_shown(line)))
    return rows


class _Oversized(Exception):
    def __init__(self, file: str, size: int):
        problem = Problem("yaml_too_large", f"The document is {size} bytes; the limit is {MAX_BYTES}.", file)
        self.result = Validated(file, problems=[problem])


def _submission(request: HttpRequest) -> tuple[str | bytes, str]:
    """The document sent by the editor: an uploaded file if any, else the pasted text."""
    upload = request.FILES.get("file")
    if upload is None or not upload.size:
        # Browsers submit a textarea's line breaks as CRLF (HTML spec); the user typed LF.
        return request.POST.get("source", "").replace("\r\n", "\n"), "<input>"
    if upload.size > MAX_BYTES:
        raise _Oversized(upload.name, upload.size)  # refused unread
    return upload.read(), upload.name


def _document(kind: str, name: str) -> Document:
    if "\x00" in name:  # no name holds one (PostgreSQL would refuse the lookup itself)
        raise Http404("No such document.")
    return get_object_or_404(
        Document.objects.select_related("live__version", "live__domain_version__document"), kind=kind, name=name
    )


def _detail_url(document: Document, number: int | None = None) -> str:
    url = reverse(f"catalog:{document.kind}_detail", args=[document.name])
    return f"{url}?version={number}" if number else url


def _kind_context(request: HttpRequest, kind: str) -> dict:
    """What every page of a kind needs: its names, its URL names, and what the user may do."""
    return {
        "kind": kind,
        "kind_label": Kind(kind).label,
        "plural": PLURAL[kind],
        "url": {
            suffix: f"catalog:{kind}_{suffix}"
            for suffix in ("list", "detail", "diff", "rollback", "editor", "validate", "publish")
        },
        "can_edit": request.user.has_permission(EDIT[kind]),
        "can_deploy": kind == Kind.AGENT and request.user.has_permission(Permission.AGENTS_DEPLOY),
    }


def _outdated(deployment) -> int | None:
    """The latest version of the deployment's domain when newer than the one it pins, else None."""
    if deployment is None:
        return None
    latest = deployment.domain_version.document.latest_number
    return latest if latest > deployment.domain_version.number else None


# --- pages ------------------------------------------------------------------------------------


def _document_list(request: HttpRequest, kind: str) -> HttpResponse:
    """A page of the documents of `kind`: names and numbers, and of each latest version its time,
    author and the metadata the list shows — read in the database, never a version's body (each
    may be 1 MiB, and a page lists 50)."""
    page, query = page_of(request, documents_listed(kind, deployment_agent=False).order_by("name", "id"))
    metadata = KeyTransform("metadata", "content")
    latest = {
        v.document_id: v
        for v in without_version_bodies(
            Version.objects.filter(document__in=page.object_list, number=F("document__latest_number")), ""
        ).annotate(project=KeyTextTransform("project", metadata), description=KeyTextTransform("description", metadata))
    }
    rows = [
        {
            "document": d,
            "latest": latest.get(d.pk),
            "project": getattr(latest.get(d.pk), "project", None),
            "newer_domain": _outdated(d.live),
        }
        for d in page
    ]
    context = {"rows": rows, "page": page, "query": query, **_kind_context(request, kind)}
    return render(request, f"catalog/{kind}_list.html", context)


def _document_page(
    request: HttpRequest,
    document: Document,
    *,
    number: int | None = None,
    problems: list[Problem] = (),
    status: int = 200,
    **extra,
) -> HttpResponse:
    """A document's versions and one version's source (`?version=`, default the latest)."""
    versions = document.versions.select_related("restored_from", "domain_version__document").order_by("-number")
    page, query = page_of(request, without_version_bodies(versions, "", "restored_from", "domain_version"))
    try:
        selected = version_get(document, number or request.GET.get("version") or document.latest_number)
    except ServiceError as e:
        return error_response(request, status=e.status, code=e.code, message=e.message)
    context = {
        "document": document,
        "versions": page,
        "page": page,
        "query": query,
        "compare_from": max(document.latest_number - 1, 1),
        "selected": selected,
        "listing": listing(selected.source, problems),
        "problems": problems,
        "live": document.live,
        "newer_domain": _outdated(document.live),
        "deployments": without_version_bodies(
            document.deployments.select_related("version", "domain_version__document"), "version", "domain_version"
        )[:10]
        if document.kind == Kind.AGENT
        else [],
        **_kind_context(request, document.kind),
        **extra,
    }
    return render(request, "catalog/document_detail.html", context, status=status)


def _diff_page(request: HttpRequest, document: Document) -> HttpResponse:
    latest = document.latest_number
    old = request.GET.get("from") or max(latest - 1, 1)
    new = request.GET.get("to") or latest
    try:
        diff = version_diff(document, old, new)
    except ServiceError as e:
        return error_response(request, status=e.status, code=e.code, message=e.message)
    context = {
        "document": document,
        "diff": diff,
        "changes": _changes(diff),
        "diff_lines": _diff_lines(diff.text),
        **_kind_context(request, document.kind),
    }
    return render(request, "catalog/diff.html", context)


def _rollback(request: HttpRequest, document: Document, number: int) -> HttpResponse:
    try:
        target = version_get(document, number)
        diff = version_diff(document, document.latest_number, target.number)
    except ServiceError as e:
        return error_response(request, status=e.status, code=e.code, message=e.message)
    error, status = None, 200
    if request.method == "POST":
        try:
            published = version_rollback(
                actor=request.user,
                document=document,
                number=target.number,
                message=request.POST.get("message"),
                request=request,
            )
        except ServiceError as e:
            error, status = e, e.status
        else:
            if published.created:
                messages.success(
                    request, f"Rolled {document.name} back to v{target.number}: it is now v{published.version.number}."
                )
            else:
                messages.info(
                    request,
                    f"v{published.version.number} already has the content of v{target.number}; nothing changed.",
                )
            return redirect(_detail_url(document, published.version.number))
    context = {
        "document": document,
        "target": target,
        "diff": diff,
        "changes": _changes(diff),
        "diff_lines": _diff_lines(diff.text),
        "error": error,
        "message": request.POST.get("message", ""),
        **_kind_context(request, document.kind),
    }
    return render(request, "catalog/rollback_confirm.html", context, status=status)


def _editor_page(
    request: HttpRequest,
    kind: str,
    *,
    source: str = "",
    result: Validated | None = None,
    error: ServiceError | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "source": source,
        "message": request.POST.get("message", ""),
        "error": error,
        "max_bytes": MAX_BYTES,
        **_validation_context(kind, source, result),
        **_kind_context(request, kind),
    }
    return render(request, "catalog/editor.html", context, status=status)


def _validation_context(kind: str, text: str, result: Validated | None) -> dict:
    if result is None:
        return {"result": None}
    other = result.kind if result.kind and result.kind != kind else None
    return {
        "result": result,
        "listing": listing(text, result.problems),
        "other_kind": other,
        "other_editor": reverse(f"catalog:{other}_editor") if other else None,
    }


def _editor(request: HttpRequest, kind: str) -> HttpResponse:
    """The editor, empty or prefilled from `?name=&version=` to start from an existing version."""
    source = ""
    if name := request.GET.get("name"):
        document = _document(kind, name)
        try:
            source = version_get(document, request.GET.get("version") or document.latest_number).source
        except ServiceError as e:
            return error_response(request, status=e.status, code=e.code, message=e.message)
    return _editor_page(request, kind, source=source)


def _validate(request: HttpRequest, kind: str) -> HttpResponse:
    """Validate without publishing: a fragment for htmx, the whole editor otherwise. Changes nothing."""
    try:
        source, file = _submission(request)
        result = document_validate(source, file)
    except _Oversized as e:
        source, result = "", e.result
    text = _text_of(source)
    if request.htmx:
        context = {**_validation_context(kind, text, result), **_kind_context(request, kind)}
        return render(request, "catalog/_validation.html", context)
    return _editor_page(request, kind, source=text, result=result)


def _publish(request: HttpRequest, kind: str) -> HttpResponse:
    try:
        source, file = _submission(request)
        published = version_publish(
            actor=request.user,
            source=source,
            message=request.POST.get("message"),
            kind=kind,
            file=file,
            request=request,
        )
    except _Oversized as e:
        return _editor_page(request, kind, result=e.result, status=422)
    except DocumentInvalid as e:
        return _editor_page(request, kind, source=_text_of(source), result=e.result, status=e.status)
    except ServiceError as e:
        return _editor_page(request, kind, source=_text_of(source), error=e, status=e.status)
    version = published.version
    if published.created:
        messages.success(request, f"Published {version.document.name} v{version.number}.")
    else:
        messages.info(request, f"Unchanged: {version.document.name} v{version.number} already has this content.")
    return redirect(_detail_url(version.document, version.number))


# --- the views of one kind --------------------------------------------------------------------


def kind_views(kind: str) -> dict[str, Callable]:
    """The guarded console views of one kind of document, by URL name suffix."""
    view, edit = VIEW[kind], EDIT[kind]

    @require_permission(view)
    @require_safe
    def document_list(request: HttpRequest) -> HttpResponse:
        return _document_list(request, kind)

    @require_permission(view)
    @require_safe
    def document_detail(request: HttpRequest, name: str) -> HttpResponse:
        return _document_page(request, _document(kind, name))

    @require_permission(view)
    @require_safe
    def document_diff(request: HttpRequest, name: str) -> HttpResponse:
        return _diff_page(request, _document(kind, name))

    @require_permission(edit)
    @require_http_methods(["GET", "HEAD", "POST"])
    def document_rollback(request: HttpRequest, name: str, number: int) -> HttpResponse:
        return _rollback(request, _document(kind, name), number)

    @require_permission(view)
    @require_safe
    def editor(request: HttpRequest) -> HttpResponse:
        return _editor(request, kind)

    @require_permission(view)
    @require_POST
    def validate(request: HttpRequest) -> HttpResponse:
        return _validate(request, kind)

    @require_permission(edit)
    @require_POST
    def publish(request: HttpRequest) -> HttpResponse:
        return _publish(request, kind)

    return {
        "list": document_list,
        "detail": document_detail,
        "diff": document_diff,
        "rollback": document_rollback,
        "editor": editor,
        "validate": validate,
        "publish": publish,
    }


DOMAIN_VIEWS = kind_views(Kind.DOMAIN)
AGENT_VIEWS = kind_views(Kind.AGENT)


@require_permission(Permission.AGENTS_DEPLOY)
@require_POST
def agent_deploy_view(request: HttpRequest, name: str, number: int) -> HttpResponse:
    document = _document(Kind.AGENT, name)
    try:
        deployment = agent_deploy(actor=request.user, document=document, number=number, request=request)
    except ServiceError as e:
        return _document_page(request, document, status=e.status, error=e)
    pin = deployment.domain_version
    messages.success(request, f"{name} v{deployment.version.number} is live, on {pin.document.name} v{pin.number}.")
    return redirect(_detail_url(document, deployment.version.number))


@require_permission(Permission.AGENTS_DEPLOY)
@require_POST
def agent_migrate_view(request: HttpRequest, name: str) -> HttpResponse:
    """Re-pin the live version to a newer domain version; on problems, show them and change nothing."""
    document = _document(Kind.AGENT, name)
    domain_number = request.POST.get("domain_version") or None
    try:
        migration = agent_migrate(actor=request.user, document=document, domain_number=domain_number, request=request)
    except DocumentInvalid as e:
        # The problems' lines are those of the live version's source (only its pin number changes).
        live = document.live.version.number
        return _document_page(request, document, number=live, status=e.status, error=e, problems=e.result.problems)
    except ServiceError as e:
        return _document_page(request, document, status=e.status, error=e)
    deployment = migration.deployment
    pin = deployment.domain_version
    if migration.changed:
        messages.success(
            request,
            f"{name} now runs on {pin.document.name} v{pin.number}: v{deployment.version.number} is live.",
        )
    else:
        messages.info(request, f"{name} already runs on {pin.document.name} v{pin.number}; nothing changed.")
    return redirect(_detail_url(document, deployment.version.number))

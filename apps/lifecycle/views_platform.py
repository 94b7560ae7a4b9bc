"""Operator console pages of the data lifecycle (platform host, operators only).

Import: an archive (apps/lifecycle/archive.py) uploaded with a new slug becomes a new workspace,
in the request: `tenant_import` verifies every member against the manifest before it writes
anything, then writes everything in one transaction, so a refusal leaves nothing behind.
Archives above FOUNDRY_IMPORT_MAX_BYTES are refused here; `manage.py import_tenant` takes them.
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods
from django_tenants.utils import schema_context

from apps.accounts.access import operator_required
from apps.accounts.services import owner_invites_issue
from apps.lifecycle.archive import KEYS_UNTRUSTED, NETWORKS_LEFT, ArchiveError, tenant_import
from apps.tenants.views import tenant_address, tenant_list_redirect


class TenantImportForm(forms.Form):
    archive = forms.FileField(help_text="A workspace archive (.zip) made by an export.")
    slug = forms.CharField(max_length=100, help_text="The new workspace's slug: lowercase letters, digits and hyphens.")
    name = forms.CharField(max_length=200, required=False, help_text="Empty: the archived workspace's name.")
    keep_networks = forms.BooleanField(
        required=False,
        label="Keep the archive's private networks",
        help_text="The private networks the archive lets the workspace's http tools reach. Unticked, they are "
        "left out, for you to grant (an archive is its owners' to edit).",
    )

    def clean_archive(self):
        archive = self.cleaned_data["archive"]
        if archive.size > settings.FOUNDRY_IMPORT_MAX_BYTES:
            raise ValidationError(
                "The archive is larger than %(limit)s, the most this page imports; use manage.py import_tenant.",
                code="archive_too_large",
                params={"limit": filesizeformat(settings.FOUNDRY_IMPORT_MAX_BYTES)},
            )
        return archive


def _source(upload):
    """What tenant_import reads: the upload's temporary file (large ones), else its bytes in memory."""
    if hasattr(upload, "temporary_file_path"):
        return upload.temporary_file_path()
    return upload.file


# Room in a request for the form's other fields and the multipart framing around the archive.
_FORM_ALLOWANCE = 64 * 1024


def _too_large(request: HttpRequest) -> bool:
    """Whether the request says it is larger than any archive this page takes (before it is read)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False  # Django reads no body it cannot measure
    return length > settings.FOUNDRY_IMPORT_MAX_BYTES + _FORM_ALLOWANCE


def _page(request: HttpRequest, form: TenantImportForm, *, error=None, status: int = 200) -> HttpResponse:
    context = {"form": form, "error": error, "max_bytes": settings.FOUNDRY_IMPORT_MAX_BYTES}
    return render(request, "lifecycle/import.html", context, status=status)


# CSRF is checked by `_tenant_import`, after the size: the check reads the body, which a request
# too large is refused without reading (Django's pattern for limits on uploads).
@csrf_exempt
@operator_required
@require_http_methods(["GET", "HEAD", "POST"])
def tenant_import_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and _too_large(request):
        limit = filesizeformat(settings.FOUNDRY_IMPORT_MAX_BYTES)
        error = ArchiveError(
            "archive_too_large",
            f"The archive is larger than {limit}, the most this page imports; use manage.py import_tenant.",
        )
        return _page(request, TenantImportForm(), error=error, status=413)
    return _tenant_import(request)


@csrf_protect
def _tenant_import(request: HttpRequest) -> HttpResponse:
    if request.method in ("GET", "HEAD"):
        return _page(request, TenantImportForm())
    form = TenantImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=400)
    data = form.cleaned_data
    try:
        tenant = tenant_import(
            _source(data["archive"]),
            slug=data["slug"],
            name=data["name"],
            actor=request.user,
            request=request,
            keep_networks=data["keep_networks"],
        )
    except ArchiveError as e:
        return _page(request, form, error=e, status=409 if e.code == "slug_taken" else 400)
    messages.success(request, f"Workspace {tenant.slug} imported from the archive ({tenant.name}).")
    if tenant.checkpoint_keys_untrusted:
        messages.warning(request, KEYS_UNTRUSTED.format(keys=", ".join(tenant.checkpoint_keys_untrusted)))
    if tenant.networks_left:
        messages.warning(request, NETWORKS_LEFT.format(networks=", ".join(tenant.networks_left), slug=tenant.slug))
    with schema_context(tenant.schema_name), transaction.atomic():
        links = owner_invites_issue(actor=request.user, base_url=tenant_address(request, tenant), request=request)
    for email, url in links:  # an admin's export: no owner can sign in to invite the others
        messages.info(request, f"Owner invitation link for {email} (it sets their password once): {url}")
    return tenant_list_redirect(tenant.slug)

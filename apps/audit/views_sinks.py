"""Console pages for SIEM sinks (settings.manage): list with delivery status, create, edit, delete.

Thin: apps/audit/delivery.py validates, saves and audits. A webhook's secret is write-only.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.accounts.access import require_permission
from apps.accounts.permissions import Permission
from apps.audit.delivery import SinkFields, audit_sink_delete, audit_sink_get, audit_sink_list, audit_sink_set
from apps.audit.export import chain_head
from apps.audit.models import AuditSink
from apps.providers.encryption import encryption_available
from foundry.errors import ServiceError
from foundry.forms import TextareaField, form_errors_add

_SYSLOG_ONLY = ("host", "port", "tls")
_WEBHOOK_ONLY = ("url", "secret", "remove_secret")


class SinkForm(forms.Form):
    name = forms.SlugField(max_length=63, help_text="Lowercase letters, digits, '-' or '_'.")
    kind = forms.ChoiceField(choices=AuditSink.Kind.choices)
    format = forms.ChoiceField(choices=AuditSink.Format.choices, initial=AuditSink.Format.JSONL)
    enabled = forms.BooleanField(required=False, initial=True)
    host = forms.CharField(max_length=253, required=False, help_text="syslog: the receiver's name or address.")
    port = forms.IntegerField(min_value=1, max_value=65535, required=False, help_text="Default 6514 (TLS) or 601.")
    tls = forms.BooleanField(label="TLS", required=False, initial=True)
    url = forms.CharField(label="URL", max_length=500, required=False, help_text="webhook: https://…")
    secret = forms.CharField(
        label="Signing secret",
        max_length=500,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="webhook: HMAC key, 16-500 characters.",
    )
    remove_secret = forms.BooleanField(label="Remove the stored secret", required=False)
    ca_certificate = TextareaField(
        label="CA certificates (PEM)",
        required=False,
        max_length=65536,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="Trust these instead of the public CAs (an internal CA).",
    )
    cursor = forms.IntegerField(
        min_value=0,
        required=False,
        help_text="Deliver the events after this sequence number (rewind or skip); empty keeps it.",
    )

    def __init__(self, *args, sink: AuditSink | None = None, **kwargs):
        if sink is not None and not args and "data" not in kwargs:
            kwargs["initial"] = {
                name: getattr(sink, name)
                for name in ("name", "kind", "format", "enabled", "host", "port", "tls", "url", "ca_certificate")
            }
        super().__init__(*args, **kwargs)
        self.sink = sink
        if sink is not None:
            self.fields["name"].disabled = True
            self.fields["name"].initial = sink.name
            if sink.has_secret:
                self.fields["secret"].help_text = "A secret is stored; leave empty to keep it."

    def sink_fields(self) -> SinkFields:
        """The fields of the chosen kind (the other kind's inputs are ignored)."""
        data = self.cleaned_data
        if data["kind"] == AuditSink.Kind.SYSLOG:
            return SinkFields(
                kind=data["kind"],
                format=data["format"],
                enabled=data["enabled"],
                host=data["host"],
                port=data["port"],
                tls=data["tls"],
                ca_certificate=data["ca_certificate"] if data["tls"] else "",
                cursor=data["cursor"],
            )
        secret = "" if data["remove_secret"] else (data["secret"] or None)
        return SinkFields(
            kind=data["kind"],
            format=data["format"],
            enabled=data["enabled"],
            url=data["url"],
            secret=secret,
            ca_certificate=data["ca_certificate"],
            cursor=data["cursor"],
        )


def _sink(request: HttpRequest, name: str) -> AuditSink:
    try:
        return audit_sink_get(request.tenant.pk, name)
    except ServiceError:
        raise Http404("No such sink.") from None


NAME_TAKEN = "A sink has this name; change it on its own page."


def _save(request: HttpRequest, form: SinkForm) -> AuditSink | None:
    """Save through the service — the Add form only creates, a sink's page only changes it —
    and None with the form carrying the errors."""
    editing = form.sink is not None
    name = form.sink.name if editing else form.cleaned_data["name"]
    try:
        return audit_sink_set(
            tenant=request.tenant,
            name=name,
            fields=form.sink_fields(),
            actor=request.user,
            request=request,
            exists=editing,
        )
    except ValidationError as e:
        form_errors_add(form, e)
    except ServiceError as e:
        if e.code == "sink_name_taken":
            form.add_error("name", ValidationError(NAME_TAKEN, code="name_taken"))
        else:
            form.add_error(None, ValidationError(f"{e.message} ({e.code})", code=e.code))
    return None


def _list_page(request: HttpRequest, form: SinkForm, status: int = 200) -> HttpResponse:
    context = {
        "sinks": audit_sink_list(request.tenant.pk),
        "head": chain_head(request.tenant.pk),
        "form": form,
        "encryption_available": encryption_available(),
    }
    return render(request, "audit/sinks.html", context, status=status)


@require_permission(Permission.SETTINGS_MANAGE)
@require_http_methods(["GET", "HEAD", "POST"])
def sink_list(request: HttpRequest) -> HttpResponse:
    """The sinks and their delivery state; POST adds one (never replaces one: `_save`)."""
    if request.method in ("GET", "HEAD"):
        return _list_page(request, SinkForm())
    form = SinkForm(request.POST)
    if not form.is_valid() or (sink := _save(request, form)) is None:
        return _list_page(request, form, status=400)
    messages.success(request, f"Audit sink {sink.name} saved.")
    return redirect("audit_sinks:sink_list")


@require_permission(Permission.SETTINGS_MANAGE)
@require_http_methods(["GET", "HEAD", "POST"])
def sink_edit(request: HttpRequest, name: str) -> HttpResponse:
    sink = _sink(request, name)
    form = SinkForm(request.POST, sink=sink) if request.method == "POST" else SinkForm(sink=sink)
    if request.method == "POST" and form.is_valid() and _save(request, form) is not None:
        messages.success(request, f"Audit sink {sink.name} saved.")
        return redirect("audit_sinks:sink_list")
    status = 400 if request.method == "POST" else 200
    context = {"sink": sink, "form": form, "head": chain_head(request.tenant.pk)}
    return render(request, "audit/sinks_edit.html", context, status=status)


@require_permission(Permission.SETTINGS_MANAGE)
@require_http_methods(["GET", "HEAD", "POST"])
def sink_delete(request: HttpRequest, name: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    sink = _sink(request, name)
    if request.method == "POST":
        audit_sink_delete(tenant=request.tenant, name=sink.name, actor=request.user, request=request)
        messages.success(request, f"Audit sink {sink.name} deleted.")
        return redirect("audit_sinks:sink_list")
    return render(request, "audit/sinks_delete.html", {"sink": sink})

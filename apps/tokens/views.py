"""Console page for API tokens (settings.manage): list, issue (secret shown once), revoke."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from apps.accounts.access import require_permission
from apps.accounts.permissions import Permission, Role
from apps.tokens.models import ApiToken, Scope
from apps.tokens.services import token_expiry_parse, token_issue, token_revoke
from foundry.forms import form_errors_add, form_once, form_sent_again, form_sent_before
from foundry.pages import page_of


class TokenIssueForm(forms.Form):
    name = forms.CharField(max_length=100)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=["read"])
    expires_in = forms.CharField(max_length=10, required=False, help_text='e.g. "30d"; empty: never')


def _page(request: HttpRequest, form: TokenIssueForm | None = None, plaintext: str | None = None, status: int = 200):
    page, query = page_of(request, ApiToken.objects.order_by("-created_at", "-id"))
    context = {
        "tokens": page,
        "page": page,
        "query": query,
        "form": form or TokenIssueForm(),
        "plaintext": plaintext,
        "manages_owners": request.user.has_permission(Permission.OWNERS_MANAGE),
        "once": form_once(),  # a reload of the page showing the secret issues no second token
    }
    return render(request, "tokens/token_list.html", context, status=status)


@require_permission(Permission.SETTINGS_MANAGE)
@require_safe
def token_list(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_permission(Permission.SETTINGS_MANAGE)
@require_POST
def token_issue_view(request: HttpRequest) -> HttpResponse:
    if form_sent_before(request):
        return form_sent_again(request)
    form = TokenIssueForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            issued = token_issue(
                actor=request.user,
                name=data["name"],
                role=data["role"],
                scopes=data["scopes"],
                expires_in=token_expiry_parse(data["expires_in"]),
                request=request,
            )
        except ValidationError as e:
            form_errors_add(form, e, field="expires_in")
        else:
            messages.success(request, f"Token {issued.token.prefix} issued. Copy it now: it is not shown again.")
            return _page(request, plaintext=issued.plaintext)
    return _page(request, form=form, status=400)


@require_permission(Permission.SETTINGS_MANAGE)
@require_POST
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    token = token_revoke(actor=request.user, token=get_object_or_404(ApiToken, pk=token_id), request=request)
    messages.success(request, f"Token {token.prefix} revoked.")
    if request.htmx:  # confirmed in the browser (hx-confirm): the list again, as a whole page
        return HttpResponseClientRedirect(reverse("tokens:token_list"))
    return redirect("tokens:token_list")

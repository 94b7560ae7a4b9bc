from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.access import require_permission
from apps.accounts.forms import LoginForm, MemberAddForm, MemberRoleForm
from apps.accounts.models import User
from apps.accounts.permissions import Permission, Role
from apps.accounts.services import (
    invitation_tokens,
    login_name,
    member_add,
    member_invite_reissue,
    member_invite_url,
    member_remove,
    member_role_change,
    member_signing_in,
)
from apps.audit.models import Outcome
from apps.audit.services import audit_first_in_window, audit_record, login_name_digest
from apps.tenants.limits import client_bucket, login_admit, refusal_response
from foundry.errors import error_response
from foundry.forms import form_once, form_sent_again, form_sent_before
from foundry.pages import page_of
from foundry.ratelimit import Decision


def login_attempt_admit(request: HttpRequest, account: str | None) -> Decision:
    """Count a sign-in attempt (password form, SSO start) of this client address on `account`."""
    tenant = getattr(request, "tenant", None)
    return login_admit(
        tenant_id=tenant.pk if tenant is not None else None, client=request.META.get("REMOTE_ADDR"), account=account
    )


def login_target(typed: str | None):
    """The account a sign-in attempt named: the user if there is one, else a keyed hash of the
    name typed (never the name itself: the trail cannot be edited, and the name may be personal)."""
    from apps.identity.verify import claim_text_plain

    name = login_name(typed)
    # PostgreSQL text holds no NUL and no lone surrogate (an identity provider's claim may): no
    # account has one in its name.
    user = User.objects.filter(email=name).first() if name and claim_text_plain(name) else None
    return user if user is not None else ("login", login_name_digest(name))


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    # Not PUT, which Django's form view takes for POST (with an empty form: a failed sign-in
    # recorded and an attempt spent for a request that could sign no one in).
    http_method_names = ["get", "head", "post", "options"]

    def get_success_url(self):
        """`next` when safe, except the sign-in page itself: Django raises ValueError ("Redirection
        loop") when a signed-in visitor is sent back to it, and `?next=/login/` is the visitor's to
        write. The console's home page then."""
        url = super().get_success_url()
        return resolve_url(settings.LOGIN_REDIRECT_URL) if url == self.request.path else url

    def post(self, request, *args, **kwargs):
        typed = request.POST.get("username") or ""
        name = login_name(typed)
        decision = login_attempt_admit(request, name)
        if not decision.allowed:
            if login_throttled_first(request, decision, name):
                audit_record(
                    action="auth.login.throttled", target=login_target(typed), outcome=Outcome.DENIED, request=request
                )
            return login_throttled(request, decision)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        with transaction.atomic():
            if member_signing_in(form.get_user()):
                response = super().form_valid(form)
                audit_record(
                    action="auth.login", actor=form.get_user(), data={"method": "password"}, request=self.request
                )
                return response
        # Removed or deactivated since the password was checked: refused as a wrong password is.
        form.add_error(None, form.get_invalid_login_error())
        return self.form_invalid(form)

    def form_invalid(self, form):
        from django.forms.forms import NON_FIELD_ERRORS

        reason = "sso_required" if form.has_error(NON_FIELD_ERRORS, "sso_required") else "invalid_credentials"
        audit_record(
            action="auth.login.failed",
            target=login_target(self.request.POST.get("username")),
            data={"method": "password", "reason": reason},
            outcome=Outcome.FAILURE,
            request=self.request,
        )
        return super().form_invalid(form)

    def get_context_data(self, **kwargs):
        from apps.identity.oidc import sso_config

        return {**super().get_context_data(**kwargs), "sso": sso_config()}


def login_throttled_first(request: HttpRequest, decision: Decision, name: str | None) -> bool:
    """Whether a refused sign-in attempt is the first this minute refused by the same bucket for
    the same client, to be audited (`auth.login.throttled`): a refusal costs the client nothing to
    repeat, and it chooses the name it types and, within its /64, its address. So the window is the
    bucket's: per account typed and client (its address as the limits count it) when the account's
    bucket refused, per client when its address's did, per workspace when the workspace's did."""
    client = client_bucket(request.META.get("REMOTE_ADDR"))
    if decision.refused_by == "account" and name is not None:
        what = f"account:{client}:{login_name_digest(name)}"
    elif decision.refused_by == "workspace":
        what = "workspace"
    else:  # the address's bucket, or no limiter to ask (counting closed)
        what = f"{decision.refused_by or 'unavailable'}:{client}"
    return audit_first_in_window(f"login-throttled:{what}")


def login_throttled(request: HttpRequest, decision: Decision) -> HttpResponse:
    """429 for a refused sign-in attempt (503 when the limiter cannot be asked and counts closed)."""
    return refusal_response(
        request,
        decision,
        surface="login",
        code="login_throttled",
        too_many="Too many sign-in attempts.",
        unavailable="Signing in is briefly unavailable. Try again in a moment.",
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """End the session; after a single sign-on, also at the identity provider when it offers
    RP-initiated logout (it sends the browser back to the sign-in page)."""
    from apps.identity.oidc import SESSION_ISSUER, sso_logout_url

    id_token = request.session.get("oidc_id_token") if request.session.get(SESSION_ISSUER) else None
    if request.user.is_authenticated:
        audit_record(action="auth.logout", data={"sso": bool(id_token)}, request=request)
    idp_logout = sso_logout_url(request, id_token) if getattr(request, "tenant", None) is not None else None
    logout(request)
    return redirect(idp_logout or "accounts:login")


class InviteAcceptView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/invite_accept.html"
    success_url = reverse_lazy("accounts:login")
    post_reset_login = False
    token_generator = invitation_tokens
    http_method_names = ["get", "head", "post", "options"]

    def dispatch(self, *args, **kwargs):
        # Django's view checks the link before the method: any method got the invalid-link page.
        if self.request.method.lower() not in self.http_method_names:
            return self.http_method_not_allowed(self.request, *args, **kwargs)
        return super().dispatch(*args, **kwargs)

    def form_valid(self, form):
        # The link was checked against the member as read at the start of the request; two
        # submissions of it at once would both pass. Check it again on the locked row: the first
        # to set a password spends it, and the other is told the link is no longer valid.
        with transaction.atomic():
            # Gone meanwhile (removed by an admin since the link was read): the link is no longer valid.
            member = User.objects.select_for_update().filter(pk=form.user.pk).first()
            token = self.request.session.get(INTERNAL_RESET_SESSION_TOKEN)
            if member is None or not self.token_generator.check_token(member, token):
                self.validlink = False
                return self.render_to_response(self.get_context_data(form=None))
            form.user = member
            response = super().form_valid(form)
            audit_record(action="member.invite_accepted", actor=member, target=member, request=self.request)
        messages.success(self.request, "Your password is set. Sign in to continue.")
        return response


def _members_context(request: HttpRequest, **extra) -> dict:
    page, query = page_of(request, User.objects.order_by("email", "id"))
    return {
        "members": page,
        "page": page,
        "query": query,
        "roles": Role.choices,
        "can_manage": request.user.has_permission(Permission.MEMBERS_MANAGE),
        "can_manage_owners": request.user.has_permission(Permission.OWNERS_MANAGE),
        "add_form": extra.pop("add_form", None) or MemberAddForm(),
        "once": form_once(),  # a reload of the page showing an invitation link issues no other
        **extra,
    }


@require_permission(Permission.MEMBERS_VIEW)
@require_safe
def member_list(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/member_list.html", _members_context(request))


@require_permission(Permission.MEMBERS_MANAGE)
@require_POST
def member_add_view(request: HttpRequest) -> HttpResponse:
    if form_sent_before(request):
        return form_sent_again(request)
    form = MemberAddForm(request.POST)
    invite_url = None
    status = 200
    if form.is_valid():
        try:
            member = member_add(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as e:
            for field, errors in e.error_dict.items():
                for error in errors:
                    form.add_error(field, error)
        else:
            invite_url = member_invite_url(user=member, base_url=request.build_absolute_uri("/"))
            messages.success(request, f"{member.email} added. Send them the invitation link below.")
            form = MemberAddForm()
    if form.errors:
        status = 400
    context = _members_context(request, add_form=form, invite_url=invite_url)
    return render(request, "accounts/member_list.html", context, status=status)


def _member_action_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    return error_response(request, status=400, code=error.code or "invalid", message=" ".join(error.messages))


@require_permission(Permission.MEMBERS_MANAGE)
@require_POST
def member_role_view(request: HttpRequest, member_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=member_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        return error_response(request, status=400, code="role_invalid", message="Choose a known role.")
    try:
        member = member_role_change(actor=request.user, member=member, role=form.cleaned_data["role"], request=request)
    except ValidationError as e:
        return _member_action_error(request, e)
    if request.htmx:
        return render(request, "accounts/_member_row.html", {**_members_context(request), "member": member})
    messages.success(request, f"{member.email} is now {member.get_role_display()}.")
    return redirect("accounts:member_list")


@require_permission(Permission.MEMBERS_MANAGE)
@require_POST
def member_remove_view(request: HttpRequest, member_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=member_id)
    try:
        member_remove(actor=request.user, member=member, request=request)
    except ValidationError as e:
        return _member_action_error(request, e)
    if request.htmx:
        context = {"member_id": member_id, "email": member.email}
        return render(request, "accounts/_member_removed.html", context)
    messages.success(request, f"{member.email} removed.")
    return redirect("accounts:member_list")


@require_permission(Permission.MEMBERS_MANAGE)
@require_POST
def member_invite_view(request: HttpRequest, member_id: int) -> HttpResponse:
    if form_sent_before(request):  # a reload would make the link just sent unusable
        return form_sent_again(request)
    member = get_object_or_404(User, pk=member_id)
    try:
        invite_url = member_invite_reissue(
            actor=request.user, member=member, base_url=request.build_absolute_uri("/"), request=request
        )
    except ValidationError as e:
        return _member_action_error(request, e)
    return render(request, "accounts/member_list.html", _members_context(request, invite_url=invite_url))

"""A data-subject erasure leaves no trace of the person's identity-provider subject
(docs/lifecycle.md: the member goes "with their ... SSO links"; the trail's "events name people
only by pseudonymous id"; "the email is replaced everywhere").

`identity.linked` recorded the provider's `sub` verbatim in the append-only trail, which no
erasure rewrites, and the model history of the link (ExternalIdentity) kept it in its changes and
its object_repr ("<subject> at <issuer>"): whoever read them could ask the provider who `sub` is,
and a provider whose subject is the address (enterprise providers mapping `sub` to mail or UPN)
left the email itself there. Both hold a keyed digest of the subject now (subject_digest), as
failed logins hold one of the name typed. Found by the residue review."""

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.audit.services import audit_record
from apps.identity.login import sso_login_resolve
from apps.identity.models import SsoConfiguration
from apps.lifecycle.erasure import member_erase
from tests.lifecycle.test_erasure import traces_of


def sso_configured() -> SsoConfiguration:
    """SSO settings saved as they stand after discovery (no provider asked), with JIT users."""
    now = timezone.now()
    return SsoConfiguration.objects.create(
        issuer="https://idp.example.com",
        client_id="foundry",
        client_secret_encrypted="x",
        authorization_endpoint="https://idp.example.com/auth",
        token_endpoint="https://idp.example.com/token",
        jwks_uri="https://idp.example.com/jwks",
        signing_algs=["RS256"],
        discovered_at=now,
        updated_at=now,
        jit_enabled=True,
    )


def test_erasure_leaves_no_trace_of_the_persons_identity_provider_subject(acme):
    email, subject = f"pat@{acme.slug}.test", "idp-subject-pat-4711"
    with schema_context(acme.schema_name):
        config = sso_configured()
        pat = sso_login_resolve(config, {"sub": subject, "email": email, "email_verified": True, "name": "Pat Q"})
        audit_record(action="auth.login", actor=pat, data={"method": "sso"})
    assert traces_of(acme, subject), "test setup: the sign-in recorded the subject"
    with schema_context(acme.schema_name):
        member_erase(actor="cli:erase_member", email=email)
    assert traces_of(acme, subject) == {}, "the erased person's IdP subject (their SSO link) survives the erasure"


def test_erasure_leaves_no_email_when_the_identity_providers_subject_is_the_email(acme):
    email = f"pat@{acme.slug}.test"
    with schema_context(acme.schema_name):
        config = sso_configured()
        pat = sso_login_resolve(config, {"sub": email, "email": email, "email_verified": True, "name": "Pat Q"})
        audit_record(action="auth.login", actor=pat, data={"method": "sso"})
    with schema_context(acme.schema_name):
        member_erase(actor="cli:erase_member", email=email)
    assert traces_of(acme, email) == {}, "the erased person's email survives the erasure (as the IdP subject)"

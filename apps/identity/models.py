from django.db import models

DEFAULT_SCOPES = "openid email profile"


class SsoConfiguration(models.Model):
    """The workspace's OpenID Connect identity provider: at most one row, in the tenant's schema.

    The client secret is stored only encrypted (`client_secret_encrypted`, a Fernet token under
    FOUNDRY_ENCRYPTION_KEYS) and is never shown back. The endpoints and algorithms come from the
    issuer's discovery document, fetched and checked when the configuration was saved.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    issuer = models.CharField(max_length=500)
    client_id = models.CharField(max_length=255)
    client_secret_encrypted = models.TextField()
    scopes = models.CharField(max_length=500, default=DEFAULT_SCOPES)
    allowed_domains = models.JSONField(default=list, blank=True, help_text="Empty: any email domain.")
    roles_claim = models.CharField(max_length=200, blank=True)
    role_map = models.JSONField(default=dict, blank=True, help_text="Claim value → Foundry role.")
    audience = models.CharField(
        max_length=500, blank=True, db_default="", help_text="Audience of API access tokens; empty: the client id."
    )
    jit_enabled = models.BooleanField(default=True)
    sso_required = models.BooleanField(default=False)
    break_glass_email = models.EmailField(blank=True)
    authorization_endpoint = models.CharField(max_length=500)
    token_endpoint = models.CharField(max_length=500)
    jwks_uri = models.CharField(max_length=500)
    userinfo_endpoint = models.CharField(max_length=500, blank=True)
    end_session_endpoint = models.CharField(max_length=500, blank=True)
    signing_algs = models.JSONField(default=list)
    iss_parameter_supported = models.BooleanField(default=False, db_default=False)  # RFC 9207, from discovery
    discovered_at = models.DateTimeField()
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="identity_sso_single_row")]

    def __str__(self) -> str:
        return f"SSO via {self.issuer}"

    @property
    def client_secret_set(self) -> bool:
        return bool(self.client_secret_encrypted)

    @property
    def api_audience(self) -> str:
        return self.audience or self.client_id


class ExternalIdentity(models.Model):
    """A member as their identity provider knows them: (issuer, subject), never the email alone.

    The same email at two providers is two identities; an identity belongs to one member."""

    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="external_identities")
    email = models.EmailField(blank=True)  # as last asserted, for people reading the member list
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="identity_external_unique")]

    def __str__(self) -> str:
        # Not the subject: this is the history's object_repr, and a subject names the person.
        return f"identity {self.pk} at {self.issuer}"

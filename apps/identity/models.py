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
    jit_enabled = models.BooleanField(default=True)
    sso_required = models.BooleanField(default=False)
    break_glass_email = models.EmailField(blank=True)
    authorization_endpoint = models.CharField(max_length=500)
    token_endpoint = models.CharField(max_length=500)
    jwks_uri = models.CharField(max_length=500)
    userinfo_endpoint = models.CharField(max_length=500, blank=True)
    end_session_endpoint = models.CharField(max_length=500, blank=True)
    signing_algs = models.JSONField(default=list)
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

from django.db import models


class ProviderName(models.TextChoices):
    """Providers that take a workspace's credentials (`scripted` needs none)."""

    OPENAI = "openai", "OpenAI-compatible (OpenAI, Azure OpenAI, vLLM, Ollama)"
    ANTHROPIC = "anthropic", "Anthropic"


class ProviderCredential(models.Model):
    """One workspace's account at one model provider. It lives in the tenant's schema.

    The API key is stored only encrypted (`api_key_encrypted`, a Fernet token under the platform's
    FOUNDRY_ENCRYPTION_KEYS); `api_key_last4` is what people are shown, and only for keys long
    enough that four characters give nothing useful away.
    """

    provider = models.CharField(max_length=20, choices=ProviderName.choices, unique=True)
    base_url = models.CharField(max_length=500, blank=True, help_text="Empty: the provider's own endpoint.")
    api_key_encrypted = models.TextField()
    api_key_last4 = models.CharField(max_length=4, blank=True)
    organization = models.CharField(max_length=200, blank=True)
    api_version = models.CharField(max_length=50, blank=True, help_text="Azure OpenAI's api-version.")
    deployment = models.CharField(max_length=200, blank=True, help_text="Azure OpenAI deployment.")
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["provider"]

    def __str__(self) -> str:
        return f"{self.provider} {self.api_key_masked}"

    @property
    def api_key_masked(self) -> str:
        return f"…{self.api_key_last4}"

    @property
    def is_azure(self) -> bool:
        return self.provider == ProviderName.OPENAI and bool(self.api_version)

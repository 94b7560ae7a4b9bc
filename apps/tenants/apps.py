from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"

    def ready(self) -> None:
        from apps.tenants import checks  # noqa: F401 — registers the Celery message signing check
        from foundry import checks as platform_checks  # noqa: F401 — and the platform settings' deploy checks

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"

    def ready(self) -> None:
        import foundry.celery  # noqa: F401 — the Celery app, configured before any task is sent (foundry/__init__.py)
        from apps.tenants import checks  # noqa: F401 — registers the Celery message signing check
        from foundry import checks as platform_checks  # noqa: F401 — and the platform settings' deploy checks

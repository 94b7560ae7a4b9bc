from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"

    def ready(self) -> None:
        from apps.audit import checks  # noqa: F401 — registers the deploy check
        from apps.audit.history import history_register

        history_register()

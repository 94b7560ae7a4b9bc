from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "apps.billing"
    label = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.runs.usage import usage_recorded
        from foundry.metrics import usage_counted

        usage_recorded.connect(usage_counted, dispatch_uid="foundry.metrics.usage_counted")

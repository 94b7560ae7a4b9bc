import datetime

from django.conf import settings
from django.core.checks import Error, Warning, register

from foundry.celery_signing import signing_cert_expiry, signing_problems

EXPIRY_WARNING = datetime.timedelta(days=30)


@register()
def celery_signing_configured(app_configs, **kwargs):
    """Unsigned Celery messages let anyone who can write to Redis run any task as any tenant."""
    if not settings.FOUNDRY_CELERY_SIGNING:
        if settings.DEBUG:
            return [
                Warning(
                    "Celery messages are unsigned (FOUNDRY_CELERY_SIGNING_KEY is not set).",
                    hint="bin/dev sets it; or run manage.py celery_signing_keys --dir DIR.",
                    id="foundry.W020",
                )
            ]
        return [
            Error(
                "Celery messages are unsigned: FOUNDRY_CELERY_SIGNING_KEY and FOUNDRY_CELERY_SIGNING_CERT are not set.",
                hint="Run manage.py celery_signing_keys --dir DIR and give every process the same files "
                "(docs/operations/deployment.md).",
                id="foundry.E020",
            )
        ]
    key, cert = settings.FOUNDRY_CELERY_SIGNING_KEY, settings.FOUNDRY_CELERY_SIGNING_CERT
    if not (key and cert):
        problems = ["FOUNDRY_CELERY_SIGNING_KEY and FOUNDRY_CELERY_SIGNING_CERT are set together or not at all."]
    else:
        problems = signing_problems(key=key, cert=cert, store=settings.FOUNDRY_CELERY_CERT_STORE)
    if problems:
        return [Error(f"Celery message signing: {problem}", id="foundry.E021") for problem in problems]
    expires = signing_cert_expiry(cert)
    if expires - datetime.datetime.now(datetime.UTC) < EXPIRY_WARNING:
        return [
            Warning(
                f"The Celery signing certificate expires on {expires:%Y-%m-%d}; from then on every message is refused.",
                hint="Rotate it (docs/operations/deployment.md, 'Celery message signing').",
                id="foundry.W021",
            )
        ]
    return []

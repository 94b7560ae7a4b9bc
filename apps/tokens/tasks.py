import logging

from celery import shared_task
from django.db import DatabaseError
from django_tenants.utils import schema_context

from apps.tenants.selectors import tenant_list
from apps.tokens.idempotency import idempotency_keys_expire

logger = logging.getLogger(__name__)


@shared_task(name="tokens.expire_idempotency_keys", ignore_result=True)
def idempotency_keys_expire_all() -> int:
    """Delete every workspace's Idempotency-Key answers past FOUNDRY_IDEMPOTENCY_HOURS (suspended
    workspaces' too: one whose requests are refused still holds what it kept); how many."""
    removed = 0
    for schema_name in tenant_list().values_list("schema_name", flat=True):
        try:
            with schema_context(schema_name):
                removed += idempotency_keys_expire()
        except DatabaseError:  # purged since it was listed: the others are still swept
            logger.warning("idempotency keys of %s not swept", schema_name, exc_info=True)
    return removed

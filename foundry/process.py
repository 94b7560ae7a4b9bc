"""What a long-lived process (a gunicorn or uvicorn worker, a Celery worker process) does once its
application is loaded."""

import gc


def loaded_freeze(*, urlconfs: bool = True) -> None:
    """Keep what the process has loaded out of the garbage collector's sight: collected first (no
    start-up garbage kept for good), then frozen, so a full collection scans only what requests
    and tasks allocate, not the modules' half a million objects (~100 ms a time). Web processes
    first load the URLconfs, which Django (and the views with them) would load on the first request."""
    if urlconfs:
        from django.conf import settings
        from django.urls import get_resolver

        for urlconf in (settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF):
            get_resolver(urlconf).reverse_dict  # noqa: B018 - imports the URLconf and its views, indexes it
    gc.collect()
    gc.freeze()

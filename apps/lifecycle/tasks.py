"""Celery tasks of the data lifecycle: thin, idempotent, each calls a service of this app."""

"""The platform's project package. The Celery app (`foundry.celery`) is loaded by Django's start
(apps/tenants/apps.py), not by importing this package: `forge`, the command-line client, imports
parts of it and starts ~0.2 s sooner without Celery and kombu."""


def __getattr__(name: str):
    if name == "celery_app":
        from foundry.celery import app

        return app
    raise AttributeError(f"module 'foundry' has no attribute {name!r}")


__all__ = ["celery_app"]

"""The Celery application, and the base class every tenant task uses.

A task never inherits a schema from the task before it: the connection is reset to the public
schema before each task, and a tenant task names its tenant in its first argument and runs
inside that tenant's schema, refusing to run for a tenant that is suspended or gone.

Messages are signed with the platform key (foundry/celery_signing.py), and a worker refuses,
and logs, any message the certificate store does not verify. The signature covers a message's
body only, not its headers, which name the task to run: so the body's kwargs carry the task's
name too (`_task_name_bind`, when it is published), and a task runs only from a body that names
it (`FoundryTask`) — a signed message relabelled for another task is refused.
"""

import logging
import os

from celery import Celery, Task
from celery.exceptions import InvalidTaskError
from celery.signals import (
    beat_init,
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_shutting_down,
)
from celery.worker.consumer import Consumer
from vine import promise

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "foundry.settings")
# Celery's Django fix-up runs Django's system checks as a worker starts and throws their result
# away: all it did was import every view and API module of the URLconf (a second of CPU per
# worker start, for modules no task uses). `manage.py check --deploy` is where checks are read.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")


class FoundryCelery(Celery):
    """Configured from Django settings; message signing is set up as soon as it is."""

    def _load_config(self):
        # Not an `on_after_configure` receiver: Celery logs and swallows what those raise (before
        # logging is set up), and a process that cannot sign must fail here, saying why.
        conf = super()._load_config()
        try:
            _message_signing_setup(self)
        except Exception:
            self._conf = None  # so every later use fails the same way, saying why
            raise
        return conf


def _message_signing_setup(celery_app: Celery) -> None:
    """Register the `auth` serializer (sign with our key, verify against the certificate store)
    in every process that sends or receives tasks, once its configuration is loaded."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from foundry.celery_signing import raw_text_refuse

    raw_text_refuse()
    if settings.FOUNDRY_CELERY_SIGNING:
        celery_app.setup_security()
    elif not settings.DEBUG:
        raise ImproperlyConfigured(
            "Celery message signing is not configured: set FOUNDRY_CELERY_SIGNING_KEY and "
            "FOUNDRY_CELERY_SIGNING_CERT (manage.py celery_signing_keys creates them)."
        )


logger = logging.getLogger(__name__)
# The key, in a message's signed body (its kwargs), that names the task it is for.
TASK_NAME_KEY = "_foundry_task"


class MessageRelabelled(Exception):
    """A worker was handed a message whose signed body names another task (or none)."""


class FoundryTask(Task):
    """Every task of the app: it runs from a message only if the message's signed body names it.

    The name rides in the body's kwargs (the headers, and the body's `embed` overlaid on them,
    are not what a missing key can be trusted from: a header of the same name would stand in)."""

    def __call__(self, *args, **kwargs):
        bound = kwargs.pop(TASK_NAME_KEY, None)
        request = self.request
        if isinstance(getattr(request, "kwargs", None), dict):
            request.kwargs.pop(TASK_NAME_KEY, None)  # a retry re-sends these: publishing names it anew
        if not request.called_directly and not request.is_eager and bound != self.name:
            logger.error("refused message %s: its signed body is for %r, not %s", request.id, bound, self.name)
            raise MessageRelabelled(f"the message's signed body is for {bound!r}, not {self.name}")
        return self.call_checked(*args, **kwargs)

    def call_checked(self, *args, **kwargs):
        """The task's run, once its message is known to be for it."""
        return Task.__call__(self, *args, **kwargs)


@before_task_publish.connect
def _task_name_bind(sender=None, body=None, headers=None, **_kwargs) -> None:
    """Before the body is serialized (and signed): name the task in its kwargs."""
    if isinstance(body, tuple | list) and len(body) == 3 and isinstance(body[1], dict):
        body[1][TASK_NAME_KEY] = (headers or {}).get("task") or sender


def message_refusal(message) -> str | None:
    """What makes a task message one the worker cannot take, before Celery reads it, or None.

    Headers are not signed, and the body is checked only once it is decoded: a message written
    into Redis without the key, with an empty body (kombu hands it over undecoded) or a header of
    the wrong shape (a copied signed message's `id` taken out, `timelimit` made text), failed in
    Celery's consumer outside its error handling and stopped the worker, or looped it, and went
    back to the queue for the next one (docs/operations/deployment.md: it never runs)."""
    headers = message.headers
    if not isinstance(headers, dict) or "task" not in headers:
        return None  # Celery's own handling: an unknown message, refused and logged
    if not message.body:
        return "an empty body"
    if not isinstance(headers.get("id"), str) or not headers["id"]:
        return "no task id"
    if not isinstance(headers["task"], str) or not isinstance(headers.get("shadow") or "", str):
        return "a task name that is no text"
    limits = headers.get("timelimit")
    numbers = (
        isinstance(limits, list | tuple)
        and len(limits) == 2
        and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in limits)
    )
    if limits is not None and not numbers:
        return "a time limit that is no pair of numbers"
    return None


def unsigned_limits_dropped(message, tasks) -> bool:
    """Put a message's `timelimit` header back to none when it names other limits than its task's
    own (True then; `tasks`: the app's registry). The platform sets time limits per task, in
    code, never per message (Celery copies the task's into the header as it sends): the header
    is unsigned, and Celery obeys it over the task's own (and a retry carries it on), so whoever
    could write to the broker could have a genuine message killed at every attempt until its run
    failed. With none in the header, the worker applies the task's own."""
    headers = message.headers
    limits = headers.get("timelimit") if isinstance(headers, dict) and "task" in headers else None
    if not isinstance(limits, list | tuple) or all(value is None for value in limits):
        return False  # none named (or no task message: Celery's own handling refuses it)
    task = tasks.get(headers.get("task"))
    if task is not None and list(limits) == [task.time_limit, task.soft_time_limit]:
        return False
    headers["timelimit"] = [None, None]
    return True


class GuardedConsumer(Consumer):
    """The worker's consumer, refusing (logged, dropped) a message `message_refusal` names, and
    one Celery fails to read, instead of stopping."""

    def create_task_handler(self, promise=promise):
        received = super().create_task_handler(promise)

        def on_task_received(message):
            refusal = message_refusal(message)
            if refusal is not None:
                return self.on_invalid_task(None, message, InvalidTaskError(f"refused message: {refusal}"))
            if unsigned_limits_dropped(message, self.app.tasks):
                logger.warning("task message %s: time limits of its unsigned header ignored", message.headers.get("id"))
            try:
                return received(message)
            except (TypeError, KeyError, ValueError, AttributeError) as exc:
                return self.on_invalid_task(None, message, InvalidTaskError(f"refused message: {exc!r}"))

        return on_task_received


app = FoundryCelery("foundry", task_cls=FoundryTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_consumer = "foundry.celery:GuardedConsumer"
app.autodiscover_tasks()


@worker_process_init.connect
def _telemetry_in_worker_process(**_kwargs) -> None:
    """Each forked worker process sets up its own tracing (an exporter's thread does not survive a fork)."""
    from foundry.metrics_fold import metrics_fold_quietly
    from foundry.process import loaded_freeze
    from foundry.telemetry import telemetry_setup

    telemetry_setup("worker")
    loaded_freeze(urlconfs=False)
    metrics_fold_quietly()  # the counter files of worker processes that ended before (killed, say)


@worker_init.connect
def _worker_not_stopping(**_kwargs) -> None:
    """A worker starting clears a shutdown notice left under its pid (a container restarted)."""
    from apps.runs.locks import worker_stopping_mark

    worker_stopping_mark(stopping=False)


@worker_shutting_down.connect
def _worker_stopping(**_kwargs) -> None:
    """A worker told to stop (SIGTERM: a deploy, `docker stop`) waits for its tasks; its runs
    stop before their next step and go back to the queue, instead of holding the shutdown until
    they end (or the stop timeout kills them and the sweep recovers them minutes later)."""
    from apps.runs.locks import worker_stopping_mark

    worker_stopping_mark(stopping=True)


@beat_init.connect
def _metrics_push_from_beat(**_kwargs) -> None:
    """Beat (one per deployment) pushes the platform's metrics over OTLP when configured."""
    from foundry.metrics_otlp import metrics_export_setup

    metrics_export_setup()


class TenantUnavailable(Exception):
    """The task's tenant does not exist or is suspended; the task did nothing."""


class TenantTask(FoundryTask):
    """Base for tasks that act inside one tenant: `task.delay(schema_name, ...)`."""

    def call_checked(self, schema_name: str, *args, **kwargs):
        from django.db import connection

        from apps.tenants.models import Tenant
        from foundry.telemetry import tenant_bound

        connection.set_schema_to_public()
        tenant = Tenant.objects.filter(schema_name=schema_name).first()
        if tenant is None:
            raise TenantUnavailable(f"tenant {schema_name!r} is missing or suspended")
        # Refused or not, the task's span and log lines name the tenant it was for.
        with tenant_bound(tenant.pk, tenant.slug):
            if not tenant.is_active:
                raise TenantUnavailable(f"tenant {schema_name!r} is missing or suspended")
            connection.set_tenant(tenant)
            try:
                return Task.__call__(self, schema_name, *args, **kwargs)
            finally:
                connection.set_schema_to_public()


@task_prerun.connect
@task_postrun.connect
def _reset_schema(**_kwargs) -> None:
    from django.db import connection

    connection.set_schema_to_public()


@task_prerun.connect
@task_postrun.connect
def _connections_aged(sender=None, **_kwargs) -> None:
    """A task's start and end close a database connection as a request's do (Django's
    `close_old_connections`): past CONN_MAX_AGE, broken, or left in a transaction. Celery's own
    closing of every connection at each task is off (settings: CELERY_DB_REUSE_MAX)."""
    from django.db import close_old_connections

    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()

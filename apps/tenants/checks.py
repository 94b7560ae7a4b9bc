import datetime

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import connection

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


# Who DATABASE_URL's role is: the app role must be bound by Row-Level Security, so neither a
# superuser nor BYPASSRLS, and it should not own the shared tables (foundry/db/roles.py).
_ROLE_SQL = """
SELECT r.rolsuper, r.rolbypassrls,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relowner = r.oid)
  FROM pg_roles r WHERE r.rolname = current_user
"""


@register(Tags.database, deploy=True)
def database_role_bound(app_configs, databases=None, **kwargs):
    """`check --deploy --database default`: DATABASE_URL's role is one Row-Level Security binds,
    and not the owner of the shared tables (who could lift their policies and triggers)."""
    if not databases or "default" not in databases:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_ROLE_SQL)
        superuser, bypass, owned = cursor.fetchone()
    role = connection.settings_dict["USER"]
    if superuser or bypass:
        return [
            Error(
                f"DATABASE_URL's role {role!r} is {'a superuser' if superuser else 'BYPASSRLS'}: "
                "Row-Level Security does not bind it, so tenants' audit and usage rows are not isolated.",
                hint="Connect as a role that is neither (deploy/postgres-init/10-foundry-role.sql).",
                id="foundry.E030",
            )
        ]
    found = []
    if owned:
        found.append(
            Warning(
                f"DATABASE_URL's role {role!r} owns {owned} tables of the public schema: it could lift their "
                "Row-Level Security and triggers.",
                hint="Give them to an owner role that only migrations use (FOUNDRY_DB_OWNER_USER; "
                "docs/operations/deployment.md, 'Database').",
                id="foundry.W030",
            )
        )
    if saved := _role_settings_saved():
        found.append(
            Warning(
                f"DATABASE_URL's role {role!r} has settings saved on it that the platform sets itself per "
                f"transaction: {', '.join(saved)}. Every new session starts with them (SQL run as the role, "
                "injected say, can save them with ALTER ROLE … SET).",
                hint=f"Unless you set them on purpose: ALTER ROLE {role} RESET <name> (as a superuser).",
                id="foundry.W031",
            )
        )
    return found


# Settings the platform gives each transaction (the tenant the Row-Level Security policies admit,
# the erasure gates, the schema) or whose saved value would lift a guard. A role may save on itself
# those any session may set (row_security, search_path), a superuser any; every later session
# starts with them.
_GUARDED_SETTINGS = ("row_security", "search_path", "role", "session_authorization", "default_transaction_read_only")
_ROLE_SETTINGS_SQL = """
SELECT split_part(setting, '=', 1) FROM pg_db_role_setting s, unnest(s.setconfig) AS setting
 WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
   AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
"""


def _role_settings_saved() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(_ROLE_SETTINGS_SQL)
        names = sorted({name for (name,) in cursor.fetchall()})
    return [name for name in names if name.startswith("foundry.") or name in _GUARDED_SETTINGS]

"""Erasing one person's data from a workspace: a data-subject request (docs/lifecycle.md).

`member_erase` removes the member (if still one) and replaces their email by a pseudonym
everywhere the workspace keeps text — every text and JSON column of every table of its schema
and of its rows in public tables, found in the catalog, so a column added later is covered —
and their names where the platform writes names (`_rewrite`, `_names_found`), rewriting
append-only rows where they hold them (catalog versions' authors) inside `pseudonymising()`.
The audit trail is not rewritten: its events name people by pseudonymous ids only (`user:42`)
and their names and emails live in the actor table, which is erased; so the chain still verifies.
The pseudonym is derived from that id (`erased-user-42@erased.invalid`), so what the person did
stays attributable to one (anonymous) actor.

Not covered: personal data people typed into run inputs, agent instructions or documents — the
workspace's content, which its owners answer for (docs/lifecycle.md says how to find it).
"""

import contextlib
import hashlib
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from functools import cache, partial

import idna
from auditlog.models import LogEntry
from django.apps import apps
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.http import HttpRequest
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Permission, Role
from apps.accounts.services import acting_member_id, actor_now, email_clean, owner_kept, owners_hold
from apps.accounts.sessions import sessions_end
from apps.audit.models import PLATFORM, AuditActor
from apps.audit.scope import rls_scope
from apps.audit.services import audit_actor_erase, audit_record, platform_actor_id
from apps.lifecycle.erasing import pseudonymising
from apps.lifecycle.exports import exports_delete, exports_held
from apps.lifecycle.inventory import Table, public_tenant_tables, redis_clients, schema_tables
from apps.lifecycle.models import CheckpointErasure, Export
from apps.lifecycle.retention import legal_hold_refuse
from apps.tenants.limits import login_name_key
from apps.tenants.models import Tenant
from apps.tokens.idempotency import idempotency_keys_forget
from apps.tokens.models import IdempotencyKey, RevokedReason
from apps.tokens.services import token_revoke_issued_by
from foundry.db.text import UNSTORABLE
from foundry.errors import ServiceError

logger = logging.getLogger(__name__)

TEXT_TYPES = ("text", "character varying", "json", "jsonb")
# Hashed, and holding pseudonymous ids only. (The actor table is rewritten — a token's row holds
# its name, which may be theirs — and the person's own rows are then erased by audit_actor_erase.)
# The usage ledger is append-only to every role and names no one: its text is the names of
# projects, agents, providers and models, none of them a person's.
NOT_REWRITTEN = frozenset({"audit_auditevent", "audit_auditcheckpoint", "billing_usage"})
# Other people's own rows: the person's is deleted, and a member row holding their address (as
# the one who invited, say) is still someone else's name.
NAMES_KEPT = frozenset({"accounts_user"})
HISTORY = LogEntry._meta.db_table  # the model history: its text and JSON of changes name people


@dataclass
class Erased:
    email: str
    actor_id: str
    pseudonym: str
    member_removed: bool = False
    rows: dict[str, int] = field(default_factory=dict)  # table → rows rewritten
    sessions: int = 0
    redis_keys: int = 0
    exports: int = 0  # archives made before, holding the person's data: deleted
    checkpoints: int = 0  # finished runs whose checkpoints held the email: their threads deleted
    # Runs under way whose state held the person (a call waiting for approval naming them, say):
    # cancelled, as what they would go on with is no longer what the workspace shows.
    runs_cancelled: list[str] = field(default_factory=list)


PSEUDONYM_DOMAIN = "@erased.invalid"


def _pseudonym(email: str, actor_id: str | None) -> tuple[str, str]:
    """(email, name) that replace the person's: from their actor id, or a digest of the email."""
    tag = actor_id.replace(":", "-") if actor_id else "person-" + hashlib.sha256(email.encode()).hexdigest()[:12]
    return f"erased-{tag}{PSEUDONYM_DOMAIN}", f"Erased {tag}"


def _columns(table: Table) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s AND data_type = ANY(%s) ORDER BY ordinal_position",
            [table.schema, table.name, list(TEXT_TYPES)],
        )
        return cursor.fetchall()


def _spellings(email: str) -> list[str]:
    """The address (in email_clean's spelling, U-labels) and, for a domain outside ASCII, its
    A-label spelling (pat@xn--bcher-kva.test for pat@bücher.test): the one the platform stored
    before addresses had one spelling (accounts 0003), and which copies made then still hold
    (the trail's actor table, the model history, catalog authors, an older backup or archive)."""
    local, _, domain = email.rpartition("@")
    if domain.isascii():
        return [email]
    try:
        return [email, f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"]
    except (idna.IDNAError, UnicodeError, ValueError):
        return [email]


def _email_pattern(email: str) -> str:
    """A PostgreSQL regex of the address, in any of its spellings, on its own: not the tail of a
    longer one (jimbob@… holds bob@…), nor the head of one on a longer domain."""
    spelled = "|".join(re.escape(each) for each in _spellings(email))
    return rf"(?<![[:alnum:]._%+-])(?:{spelled})(?![[:alnum:]_-]|\.[[:alnum:]])"


@cache
def _fixed_values() -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """Model fields with choices: their (table, column)s, and the values they hold (lower case).
    Such a column holds one of its values, never a name."""
    fields = [(model._meta.db_table, f) for model in apps.get_models() for f in model._meta.concrete_fields]
    columns = frozenset((table, f.column) for table, f in fields if f.choices)
    values = frozenset(str(value).lower() for _, f in fields if f.choices for value, _label in f.flatchoices)
    return columns, values


@dataclass(frozen=True)
class _Names:
    """How the person's names are found (regexes, with their pseudonym), by where they are."""

    in_values: list[tuple[str, str]]  # short text (varchar): a name of two words or more, anywhere in it
    in_attributions: list[tuple[str, str]]  # an attribution column (`_attribution`): a one-word name too
    in_history: list[tuple[str, str]]  # the model history's text and JSON (its changes)


# The keys of the model history's changes that hold a person's name (a member's, an attribution).
_NAME_KEYS = r"(?:full_name|[a-z_]*_by|approver|author_name|display_name)"
# A JSON string, as the history writes one: what comes before the name in its change list.
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'


def _attribution(table: str, column: str) -> bool:
    """A column the platform writes a person's name into as the whole value — an author, a creator,
    an approver, an actor's display name, an API token's name (tokens are named after their
    holder) — where a one-word name is theirs. Elsewhere a lone word is a document's or an agent's
    name, a model, a tool ("Finance" erased must not rename the domain `finance`)."""
    return (
        column.endswith("_by")
        or column in ("approver", "author_name", "display_name")
        or (table, column) == ("tokens_apitoken", "name")
    )


def _rewrite(
    table: Table, email: tuple[str, str], names: _Names, *, tenant_id: int | None, actor_suffix: str = ""
) -> int:
    """One UPDATE over the table: `email` (regex, replacement) applied to every text/JSON column,
    the names to the columns the platform writes a name into — short text (varchar) without
    choices (not a role, a status), the model history — and never to the member table (the
    person's row is deleted; the others are other people's). Only the tenant's rows of a public
    table; with `actor_suffix`, only those whose actor id ends so (the platform chain's actors of
    one workspace, `…@tenant:<id>`)."""
    columns = _columns(table)
    if not columns:
        return 0
    fixed, _ = _fixed_values()
    sets, wheres, params_set, params_where = [], [], [], []
    for name, kind in columns:
        quoted = connection.ops.quote_name(name)
        text = f"{quoted}::text" if kind in ("json", "jsonb") else quoted
        replacements = [email]
        if table.name == HISTORY:
            replacements += names.in_history
        elif kind == "character varying" and (table.name, name) not in fixed and table.name not in NAMES_KEPT:
            replacements += names.in_values
            if _attribution(table.name, name):
                replacements += names.in_attributions
        expression = text
        for pattern, replacement in replacements:
            expression = f"regexp_replace({expression}, %s, %s, 'gi')"
            params_set += [pattern, replacement]
            wheres.append(f"{text} ~* %s")
            params_where.append(pattern)
        sets.append(f"{quoted} = ({expression})::{kind}" if kind in ("json", "jsonb") else f"{quoted} = {expression}")
    scope = ""
    if tenant_id is not None:
        scope, params_where = " AND tenant_id = %s", [*params_where, tenant_id]
    if actor_suffix:
        scope, params_where = f"{scope} AND actor_id LIKE %s", [*params_where, "%" + actor_suffix]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table.qualified} SET {', '.join(sets)} WHERE ({' OR '.join(wheres)}){scope}",  # noqa: S608 — catalog names
            params_set + params_where,
        )
        return cursor.rowcount


def _identities(email: str, member: User | None, tenant_id: int) -> list[str]:
    """Every actor id the person had here (`user:N`; a member removed and added again had two),
    the current member's first, then the oldest: the first names their pseudonym. Former members
    are found by the audit trail's actor table, and by the model history (a member row's history
    is named by its email), which still knows them once `audit_erase_actor` cleared the table."""
    current = [f"user:{member.pk}"] if member is not None else []
    with rls_scope(tenant_id):
        spellings = _spellings(email)
        former = AuditActor.objects.filter(tenant_id=tenant_id, email__in=spellings, actor_id__startswith="user:")
        former = list(former.order_by("first_seen_at", "actor_id").values_list("actor_id", flat=True))
    kind = ContentType.objects.get_for_model(User)
    history = LogEntry.objects.filter(content_type=kind, object_repr__in=spellings)
    former += [f"user:{pk}" for pk in history.order_by("timestamp", "pk").values_list("object_pk", flat=True)]
    return list(dict.fromkeys(current + former))


def _names(email: str, member: User | None, actor_ids: list[str], tenant_id: int) -> set[str]:
    """The names the person went by here: the member's, the actor table's, and every name the
    model history says their member rows had (an SSO sign-in renames a member to the IdP's name)."""
    names = {member.full_name} if member is not None and member.full_name else set()
    with rls_scope(tenant_id):
        names |= set(
            AuditActor.objects.filter(tenant_id=tenant_id, actor_id__in=actor_ids).values_list(
                "display_name", flat=True
            )
        )
    kind = ContentType.objects.get_for_model(User)
    user_ids = [actor_id.removeprefix("user:") for actor_id in actor_ids]
    for changes in LogEntry.objects.filter(content_type=kind, object_pk__in=user_ids).values_list("changes", flat=True):
        if isinstance(changes, str):
            changes = json.loads(changes or "{}")
        values = changes.get("full_name") if isinstance(changes, dict) else None
        names |= {value for value in values or () if isinstance(value, str)}
    return {name for name in names if name and len(name.strip()) >= 3 and name.strip().lower() != email}


# Not inside an address: "Sam" is no word of sam.jones@acme.example.
_NOT_AFTER = r"(?<![[:alnum:]_.%+@-])"
_NOT_BEFORE = r"(?![[:alnum:]_@-]|\.[[:alnum:]])"


def _names_found(names: set[str], pseudonym: str) -> _Names:
    """A name of two words or more is distinctive: replaced as a phrase inside any short text value
    ("Pat Example's laptop") and the history. One word ("Sam", "Owner") is not: replaced only where
    it is the whole value of an attribution (an author "Sam": `_attribution`), or a whole string of
    the history's JSON under a key that holds a name (`full_name`, `created_by`...). The history's
    JSON writes a quote or a backslash escaped (`Pat \\"PJ\\" Example`): that spelling is found too."""
    in_values, in_attributions, in_history = [], [], []
    for name in sorted(names):
        name = name.strip()
        spellings = dict.fromkeys([re.escape(name), re.escape(json.dumps(name, ensure_ascii=False)[1:-1])])
        if len(name.split()) > 1:
            for escaped in spellings:
                phrase = f"{_NOT_AFTER}{escaped}{_NOT_BEFORE}"
                in_history.append((phrase, pseudonym))
            in_values.append((f"{_NOT_AFTER}{re.escape(name)}{_NOT_BEFORE}", pseudonym))
            continue
        in_attributions.append((rf"^\s*{re.escape(name)}\s*$", pseudonym))
        for escaped in spellings:
            in_history.append((rf'(?<="{_NAME_KEYS}": \[(?:(?:{_JSON_STRING}|null), )?"){escaped}(?="[],])', pseudonym))
    return _Names(in_values, in_attributions, in_history)


def _approvers(email: tuple[str, str], names: _Names) -> list[str]:
    """What the person's decisions name as their approver, as the approvals hold it before the
    rewrite: their email, or an API token's name (tokens are named after their holder), which is
    also what a run resumed with their decision holds in its checkpoints."""
    patterns = [email[0], *(pattern for pattern, _ in names.in_values + names.in_attributions)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT approver FROM runs_approval WHERE approver ~* ANY(%s)", [patterns])
        return [approver for (approver,) in cursor.fetchall()]


def _step_approvers_rewrite(email: tuple[str, str], names: _Names) -> int:
    """The approver a step's record names (`approval.by`, foundry/runtime/graph.py: a copy of the
    approval's, written by the platform into a JSON column the names are otherwise not looked for
    in), rewritten as the approval's is."""
    by, expression, params = "record #>> '{approval,by}'", "record #>> '{approval,by}'", []
    replacements = [email, *names.in_values, *names.in_attributions]
    for pattern, replacement in replacements:
        expression = f"regexp_replace({expression}, %s, %s, 'gi')"
        params += [pattern, replacement]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE runs_step SET record = jsonb_set(record, '{{approval,by}}', to_jsonb({expression}))"  # noqa: S608
            f" WHERE {by} ~* ANY(%s)",
            [*params, [pattern for pattern, _ in replacements]],
        )
        return cursor.rowcount


def _threads_holding(email: str, approvers: list[str]) -> list[uuid.UUID]:
    """The runs whose serialised state (checkpoints) holds the email or one of the person's
    `approvers` (a decision a run was resumed with names its approver)."""
    from apps.runs.checkpoints import checkpointer

    saver = checkpointer(connection.schema_name)
    threads = []
    for needle in dict.fromkeys([*_spellings(email), *approvers]):
        for thread in saver.threads_holding(needle.encode()):
            with contextlib.suppress(ValueError):
                threads.append(uuid.UUID(thread))
    return threads


def _runs_stop(threads: list[uuid.UUID]) -> tuple[list[str], list[str]]:
    """Cancel the unfinished runs among `threads` (and their sub-agent runs): their state names the
    person as the rows about to be rewritten no longer do (a call waiting for approval: its
    approver would be shown the pseudonym, and the call made with the address); (the runs
    cancelled, those of them still running, which stop before their next step)."""
    from apps.runs.models import Run
    from apps.runs.services import runs_cancel_locked

    unfinished = list(Run.objects.select_for_update().filter(pk__in=threads).exclude(status__in=Run.FINISHED))
    # Cancelled already, still stopping: not cancelled again, but forgotten once stopped too.
    stopping = [str(run.pk) for run in unfinished if run.cancel_requested_at is not None]
    runs = [run for run in unfinished if run.cancel_requested_at is None]
    running = runs_cancel_locked(runs, "Cancelled: a person its state names was erased (a data-subject request).")
    return [str(run.pk) for run in runs], [*running, *stopping]


def _checkpoints_delete(threads: list[uuid.UUID]) -> int:
    """Delete the checkpoints of the finished runs among `threads`; a run still running keeps its
    own until it stops (`erased_runs_forget`). Runs' steps and approvals are text, rewritten as any."""
    from apps.runs.checkpoints import checkpointer
    from apps.runs.models import Run

    finished = Run.objects.filter(pk__in=threads, status__in=Run.FINISHED).values_list("pk", flat=True)
    finished = [str(pk) for pk in finished]
    checkpointer(connection.schema_name).prune(finished, strategy="delete")
    return len(finished)


def _running_stop(schema: str, running: list[str]) -> None:
    """After the erasure's commit: tell the runs' workers to stop now, and queue the deletion of
    their checkpoints. Owed in the database already (CheckpointErasure): when Redis or the broker
    fails here, the runs still stop (before their next step, from the database) and the runs
    sweep deletes their checkpoints (`checkpoint_erasures_finish`)."""
    from kombu.exceptions import OperationalError

    from apps.lifecycle.tasks import erased_runs_forget_task
    from apps.runs.locks import cancel_signal

    cancel_signal(schema, running)  # best effort: each stops a step later without it
    try:
        erased_runs_forget_task.apply_async((schema, running), countdown=5)
    except OperationalError as exc:
        logger.warning("erasure in %s: checkpoint deletion not queued (%s); the runs sweep does it", schema, exc)


def erased_runs_forget(run_ids: list[str]) -> list[str]:
    """Delete the checkpoints of the runs an erasure cancelled while their workers ran them, once
    they have stopped (no longer owed then); the ids of those still running (asked again later)."""
    from apps.runs.checkpoints import checkpointer
    from apps.runs.models import Run

    unfinished = Run.objects.filter(pk__in=run_ids).exclude(status__in=Run.FINISHED).values_list("pk", flat=True)
    unfinished = {str(pk) for pk in unfinished}
    stopped = [each for each in run_ids if each not in unfinished]
    checkpointer(connection.schema_name).prune(stopped, strategy="delete")
    CheckpointErasure.objects.filter(run_id__in=stopped).delete()
    return sorted(unfinished)


def checkpoint_erasures_finish(limit: int = 1000) -> int:
    """The checkpoint deletions erasures still owe in this workspace, done for the runs that have
    stopped (the runs sweep, every few minutes); how many are still owed."""
    owed = [str(run_id) for run_id in CheckpointErasure.objects.values_list("run_id", flat=True)[:limit]]
    return len(erased_runs_forget(owed)) if owed else 0


def _owner_erasable(actor, member: User, member_acting: bool) -> None:
    if member.role == Role.OWNER and member_acting and not actor.has_permission(Permission.OWNERS_MANAGE):
        raise PermissionDenied(f"Your role does not allow {Permission.OWNERS_MANAGE}.")


def _person(actor: User | str, member_acting: bool, email: str, tenant_id: int) -> tuple[User | None, list[str]]:
    """(the member of that address, if any; the person's actor ids), or ValidationError when
    nobody with that address is or was a member, or the erasure is the actor's own."""
    # Addresses are stored in email_clean's one spelling: compared exactly (a case-insensitive
    # match upper-cases the dotless i (U+0131) of another mailbox's domain to I).
    member = User.objects.filter(email=email).first()
    actor_ids = _identities(email, member, tenant_id)
    if member is None and not actor_ids:
        raise ValidationError("No one with that email is or was a member here.", code="person_unknown")
    if member is not None:
        if member_acting and member.pk == acting_member_id(actor):  # an API token acts as its issuer
            raise ValidationError("You cannot erase yourself; ask another administrator.", code="erase_self")
        _owner_erasable(actor, member, member_acting)
    return member, actor_ids


def member_erase(
    *, actor: User | str, email: str, request: HttpRequest | None = None, reapplied: bool = False
) -> Erased:
    """Erase a person's personal data from the workspace the connection is on (see the module
    docstring). The person need not be a member any more. `actor`: who asks — a member, an API
    token or a service token, whose role's permissions are checked alike — or the name of an
    operator's tool (`cli:erase_member`), which is not checked. `reapplied`: an erasure made
    again on a workspace restored from a backup older than it (`erasures_reapply`)."""
    member_acting = not isinstance(actor, str)
    if member_acting and not actor.has_permission(Permission.MEMBERS_MANAGE):
        raise PermissionDenied(f"Your role does not allow {Permission.MEMBERS_MANAGE}.")
    try:
        email = email_clean(email)
    except ValidationError:
        # An address stored before a rule that now refuses it (a domain label mixing scripts):
        # its member may still be erased, by the address as stored.
        stored = email.strip().lower()
        if UNSTORABLE.search(stored) or not User.objects.filter(email=stored).exists():  # no row holds a NUL
            raise
        email = stored
    tenant_id = Tenant.objects.values_list("pk", flat=True).get(schema_name=connection.schema_name)
    _person(actor, member_acting, email, tenant_id)  # refused before any lock is waited for
    with pseudonymising():
        # No export starts until this commits: one started meanwhile would take its snapshot
        # before it, after the archives made before were deleted (`exports_delete` below).
        exports_held()
        # A trail on legal hold keeps who each actor was: the actor table's names are evidence too.
        legal_hold_refuse("anyone's personal data can be erased")  # locked: a hold put on waits
        # Read again once the workspace's locks are held: the same erasure, sent twice at once,
        # finds the person the first one erased gone (`person_unknown`, as a retry sent after it).
        member, actor_ids = _person(actor, member_acting, email, tenant_id)
        actor_id = actor_ids[0] if actor_ids else None
        pseudo_email, pseudo_name = _pseudonym(email, actor_id)
        by_email = (_email_pattern(email), pseudo_email)
        by_name = _names_found(_names(email, member, actor_ids, tenant_id), pseudo_name)
        erased = Erased(email=email, actor_id=actor_id or "", pseudonym=pseudo_email)
        if member is not None:
            owners_hold()
            # Read again, locked: made an owner since (by an owner, meanwhile), the checks of an
            # owner's erasure apply; removed since, there is no member left to remove.
            member = User.objects.select_for_update().filter(pk=member.pk).first()
        standing = actor
        if member_acting:  # as the asker stands now, not as their request began (actor_now)
            standing = actor_now(actor)
            if not standing.has_permission(Permission.MEMBERS_MANAGE):
                raise PermissionDenied(f"Your role does not allow {Permission.MEMBERS_MANAGE}.")
        if member is not None:
            _owner_erasable(standing, member, member_acting)
            owner_kept(member)
            token_revoke_issued_by(actor=actor, member=member, reason=RevokedReason.ISSUER_REMOVED, request=request)
            member.delete()  # external identities go with it (cascade); tokens stay, revoked
            erased.member_removed = True
        # Every id the person had here, not only a member's still: sessions a former member left
        # (an SSO sign-in's keeps the provider's ID token, naming them) until they expire.
        user_ids = {each.removeprefix("user:") for each in actor_ids if each.startswith("user:")}
        erased.sessions = _sessions_delete(user_ids | ({str(member.pk)} if member is not None else set()))
        approvers = _approvers(by_email, by_name)
        threads = _threads_holding(email, approvers)
        erased.runs_cancelled, running = _runs_stop(threads)
        # Owed with the erasure, whatever becomes of the task that does it once they stop.
        CheckpointErasure.objects.bulk_create(
            [CheckpointErasure(run_id=each) for each in running], ignore_conflicts=True
        )
        if count := idempotency_keys_forget():  # sealed answers to API retries, which may name them
            erased.rows[IdempotencyKey._meta.db_table] = count
        for table in schema_tables(connection.schema_name):
            if count := _rewrite(table, by_email, by_name, tenant_id=None):
                erased.rows[table.name] = count
        if count := _step_approvers_rewrite(by_email, by_name):
            erased.rows["runs_step"] = erased.rows.get("runs_step", 0) + count
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('foundry.tenant_id', %s, true), set_config('foundry.tenant_ids', %s, true)",
                [str(tenant_id)] * 2,
            )
        for table in public_tenant_tables():
            if table.name not in NOT_REWRITTEN and (count := _rewrite(table, by_email, by_name, tenant_id=tenant_id)):
                erased.rows[f"public.{table.name}"] = count
        # The platform chain's actors of this workspace (`…@tenant:<id>`: a token named after them
        # that asked for the workspace's deletion, say), beside the person's own ids erased below.
        actors = next(table for table in public_tenant_tables() if table.name == AuditActor._meta.db_table)
        with rls_scope(PLATFORM):
            suffix = f"@tenant:{tenant_id}"
            if count := _rewrite(actors, by_email, by_name, tenant_id=PLATFORM, actor_suffix=suffix):
                erased.rows["public.audit_auditactor (platform chain)"] = count
        # Archives made before hold what was just replaced: their links would still hand it out.
        erased.exports = exports_delete(Export.objects.all())
        erased.checkpoints = _checkpoints_delete(threads)
        audit_record(
            action="member.erased",
            actor=actor,
            target=("accounts.user", actor_id.removeprefix("user:")) if actor_id else ("person", "unknown"),
            request=request,
            data={
                "member_removed": erased.member_removed,
                "rows": erased.rows,
                "sessions": erased.sessions,
                "exports_deleted": erased.exports,
                "checkpoints_deleted": erased.checkpoints,
                "runs_cancelled": erased.runs_cancelled,
                **({"reapplied": True} if reapplied else {}),
            },
        )
        if not reapplied:
            _erasure_register(tenant_id, email, actor_ids, actor=actor, request=request)
    if running:
        transaction.on_commit(partial(_running_stop, connection.schema_name, running), robust=True)
    for each in actor_ids:
        audit_actor_erase(tenant_id=tenant_id, actor_id=each, actor=actor, request=request)
        # The platform's chain names them too if they ever acted on it (a deletion they asked for).
        audit_actor_erase(tenant_id=PLATFORM, actor_id=platform_actor_id(tenant_id, each), actor=actor, request=request)
    erased.redis_keys = _login_keys_delete(tenant_id, email)
    return erased


def _sessions_delete(user_ids: set[str]) -> int:
    """The person's open sessions, under any of their ids."""
    return sessions_end(lambda data: data.get(SESSION_KEY) in user_ids) if user_ids else 0


def _login_keys_delete(tenant_id: int, email: str) -> int:
    """Sign-in limit buckets of the login name typed (apps/tenants/limits.py `login_name_key`)."""
    deleted = 0
    name = login_name_key(email)
    for client in redis_clients():
        keys = client.scan_iter(match=f"rl:login-account:{tenant_id}:*", count=1000)
        mine = [key for key in keys if key.decode(errors="replace").endswith(f":{name}")]
        deleted += client.delete(*mine) if mine else 0
    return deleted


# --- erasures outlive the workspace's backups -------------------------------------------------
# A backup made before an erasure holds what it replaced: restored, the person's data would be
# back. So each erasure is registered on the platform's chain (which a workspace's purge keeps)
# by the person's actor ids in the workspace and a keyed digest of their address, never the
# address; a workspace's restore makes every erasure registered for it again. An id alone could
# name another person in the backup (ids are given again after a restore from an older backup),
# so the address the backup holds for the id must have the digest: else nothing is erased and the
# restore names the ids for an operator to judge (the key rotated without its fallback, say).
ERASURE_REGISTERED = "lifecycle.member.erased"


def erasure_digest(email: str, key: str) -> str:
    """A person's address as a keyed, non-reversible id."""
    secret = hashlib.sha256(b"foundry-erasure:" + key.encode()).digest()
    return hmac.new(secret, email.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def erasures_owed(tenant_id: int) -> bool:
    """Whether any erasure is registered for workspace `tenant_id` (a restore of an older backup
    of it may hold the person again: `erasures_reapply`)."""
    from apps.audit.models import AuditEvent

    with rls_scope(PLATFORM):
        return AuditEvent.objects.filter(
            tenant_id=PLATFORM, action=ERASURE_REGISTERED, target_type="tenants.tenant", target_id=str(tenant_id)
        ).exists()


def _erasure_register(tenant_id: int, email: str, actor_ids: list[str], *, actor, request) -> None:
    audit_record(
        action=ERASURE_REGISTERED,
        actor=actor,
        target=("tenants.tenant", tenant_id),
        request=request,
        chain=PLATFORM,
        data={"actor_ids": actor_ids, "subject": erasure_digest(email, settings.SECRET_KEY)},
    )


@dataclass
class Reapplied:
    erased: list[str] = field(default_factory=list)  # the pseudonyms of those erased again
    held: list[str] = field(default_factory=list)  # actor ids a legal hold kept from being erased again
    failed: list[str] = field(default_factory=list)  # "user:3 (why)": refused or failed, to make by hand


def erasures_reapply(tenant: Tenant, *, actor: str) -> Reapplied:
    """Make again, in a workspace just restored from a backup, every erasure registered for it
    (one the backup already holds finds no address: nothing to do). The person is found by the
    actor ids the erasure recorded — their member row, the trail's actor table, the model history
    of their member rows — and the address found there that has the registered digest (under
    SECRET_KEY or one of its fallbacks); ids whose addresses have none are named in `failed`, as
    are erasures the restored workspace refuses. A workspace whose trail is on legal hold (as it
    was when the backup was made) keeps the person's data until its owners lift the hold: `held`."""
    from apps.audit.models import AuditEvent

    with rls_scope(PLATFORM):
        registered = [
            event.data
            for event in AuditEvent.objects.filter(
                tenant_id=PLATFORM,
                action=ERASURE_REGISTERED,
                target_type="tenants.tenant",
                target_id=str(tenant.pk),
            )
            .order_by("seq")
            .only("details")
        ]
    done = Reapplied()
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    with schema_context(tenant.schema_name):
        for details in registered:
            if not isinstance(details, dict):
                continue  # not as the platform writes them (verification reports it)
            ids = [each for each in details.get("actor_ids") or () if isinstance(each, str)]
            addresses = _addresses_of(ids, tenant.pk)
            if not addresses:
                continue  # erased in the backup already, or not in it
            digest = details.get("subject")
            # Registered in email_clean's spelling; the backup may hold an older one (A-labels).
            email = next(
                (a for a in map(_spelled, addresses) if digest in {erasure_digest(a, key) for key in keys}), None
            )
            if email is None:
                done.failed.append(
                    f"{', '.join(ids)} (the backup's address for them is not the erased person's: another "
                    "person given the id, or SECRET_KEY changed without FOUNDRY_SECRET_KEY_FALLBACKS)"
                )
                continue
            try:
                done.erased.append(member_erase(actor=actor, email=email, reapplied=True).pseudonym)
            except (ServiceError, ValidationError) as refused:  # the workspace as the backup holds it refuses
                if getattr(refused, "code", None) == "legal_hold":
                    done.held.extend(ids)
                    continue
                why = refused.message if isinstance(refused, ServiceError) else " ".join(refused.messages)
                logger.warning("making again the erasure of %s in %s: %s", ", ".join(ids), tenant.slug, why)
                done.failed.append(f"{', '.join(ids)} ({why})")
            except Exception:  # the workspace is restored: the others are still made, this one named
                logger.exception("making again the erasure of %s in %s failed", ", ".join(ids), tenant.slug)
                done.failed.append(f"{', '.join(ids)} (an error; the log says which)")
    return done


def _spelled(address: str) -> str:
    """The address in email_clean's spelling, or as it is when that refuses it."""
    try:
        return email_clean(address)
    except ValidationError:
        return address


def _addresses_of(actor_ids: list[str], tenant_id: int) -> list[str]:
    """The addresses the workspace (on the connection) knows the actor ids by."""
    user_ids = [each.removeprefix("user:") for each in actor_ids if each.startswith("user:")]
    user_ids = [pk for pk in user_ids if pk.isdigit()]
    found = list(User.objects.filter(pk__in=user_ids).values_list("email", flat=True))
    with rls_scope(tenant_id):
        found += AuditActor.objects.filter(
            tenant_id=tenant_id, actor_id__in=actor_ids, email__isnull=False
        ).values_list("email", flat=True)
    kind = ContentType.objects.get_for_model(User)
    found += LogEntry.objects.filter(content_type=kind, object_pk__in=user_ids).values_list("object_repr", flat=True)
    # A pseudonym is what an erasure left: the person is erased already.
    return [each for each in dict.fromkeys(found) if each and not each.endswith(PSEUDONYM_DOMAIN)]

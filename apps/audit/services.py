"""The one way to record an audit event, and to erase an actor's personal data.

`audit_record` appends to the chain of the schema the connection is on (a tenant's, or the
platform's on the public schema) with one call of the SQL function `audit_append`, inside the
caller's transaction: an event of a change that rolls back rolls back with it.

Actors and targets are recorded as pseudonymous ids; an actor's name and email go to the
erasable actor table. A typed login name that matches nobody is kept only as a keyed hash.
"""

import fcntl
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.chain import checkpoint_message, details_text, event_hash, time_text
from apps.audit.models import (
    PLATFORM,
    AuditActor,
    AuditChain,
    AuditChainBase,
    AuditCheckpoint,
    AuditEvent,
    AuditSink,
    Outcome,
)
from apps.audit.scope import chain_of_connection, rls_scope
from apps.audit.selectors import audit_chain_base
from apps.audit.signing import checkpoint_signed, signing_key
from foundry.db.columns import columns_of
from foundry.request_context import current_request_id

logger = logging.getLogger(__name__)

MAX_USER_AGENT = 512


@dataclass(frozen=True)
class Actor:
    type: str  # user | operator | token | service | anonymous
    id: str
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Appended:
    tenant_id: int
    seq: int
    hash: str


def actor_of(value: Any) -> Actor:
    """The audit actor for a user, an API principal, a service name, or nobody."""
    if value is None:
        return Actor("anonymous", "anonymous")
    if isinstance(value, Actor):
        return value
    if isinstance(value, str):
        name = value.removeprefix("service:")
        return Actor("service", f"service:{name}")
    token = getattr(value, "token", None)
    if token is not None:
        return Actor("token", f"token:{token.prefix}", name=token.name)
    if isinstance(value, models.Model) and hasattr(value, "email"):
        if not getattr(value, "is_authenticated", True):
            return Actor("anonymous", "anonymous")
        # Platform operators are staff users of the public schema; tenant members never are.
        kind = "operator" if getattr(value, "is_staff", False) else "user"
        return Actor(kind, f"{kind}:{value.pk}", name=getattr(value, "display_name", None) or None, email=value.email)
    if getattr(value, "is_authenticated", None) is False:
        return Actor("anonymous", "anonymous")
    return Actor("service", f"service:{value}")


def target_of(value: Any) -> tuple[str, str]:
    """(type, id) of what an event acted on: a model row by label and key, or a plain name."""
    if value is None:
        return "", ""
    if isinstance(value, tuple):
        return str(value[0]), str(value[1])
    if isinstance(value, models.Model):
        return value._meta.label_lower, str(value.pk)
    return "", str(value)


def subject_digest(subject: str) -> str:
    """An identity provider's subject for a member as a keyed, non-reversible id: the trail and
    the model history outlive an erasure, and a subject names the person at their provider (some
    providers' subject is the email address)."""
    key = hashlib.sha256(b"foundry-audit-subject:" + settings.SECRET_KEY.encode()).digest()
    return "sub:" + hmac.new(key, subject.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def login_name_digest(name: str) -> str:
    """A typed login name as a keyed, non-reversible id (failed logins of unknown accounts)."""
    key = hashlib.sha256(b"foundry-audit-login:" + settings.SECRET_KEY.encode()).digest()
    # surrogatepass: a name from an identity provider's claims may hold a lone surrogate.
    return hmac.new(key, name.strip().lower().encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def _clean(value: str | None, limit: int) -> str:
    return (value or "").replace("\x00", "")[:limit]


def audit_record(
    *,
    action: str,
    actor: Any = None,
    target: Any = None,
    data: dict | None = None,
    request: HttpRequest | None = None,
    outcome: str = Outcome.SUCCESS,
    chain: int | None = None,
    conn: Any = None,
) -> Appended:
    """Append an event to `chain` (default: the chain of the schema the connection is on), on
    Django's connection or `conn` (a psycopg connection to another database: one just restored)."""
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    tenant_id = chain_of_connection() if chain is None else chain
    who = actor_of(actor)
    if tenant_id == PLATFORM and who.type in ("user", "token"):
        # A workspace's member (or token) on the platform's chain: which workspace's.
        home = _home_of(request)
        if home is not None:
            who = replace(who, id=platform_actor_id(home, who.id))
    target_type, target_id = target_of(target)
    meta = request.META if request is not None else {}
    if request is not None and request.path == "/mcp" and (data is None or "via" not in data):
        data = {**(data or {}), "via": "mcp"}  # the same services serve the API and MCP: say which
    request_id = getattr(request, "request_id", None) or current_request_id() or ""
    with (connection if conn is None else conn).cursor() as cursor:
        cursor.execute(
            "SELECT seq, hash FROM public.audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                tenant_id,
                who.type,
                _clean(who.id, 100),
                _clean(action, 100),
                _clean(target_type, 100),
                _clean(target_id, 200),
                Outcome(outcome).value,
                _clean(meta.get("REMOTE_ADDR"), 45),
                _clean(meta.get("HTTP_USER_AGENT"), MAX_USER_AGENT),
                _clean(request_id, 64),
                details_text(data).replace("\x00", "\\u0000"),
                _clean(who.name, 255) or None,
                _clean(who.email, 254) or None,
            ],
        )
        seq, digest = cursor.fetchone()
    return Appended(tenant_id, seq, digest)


def _home_of(request: HttpRequest | None) -> int | None:
    """The workspace whose users and tokens act here: the connection's, or the request's host's
    (a service may read public rows meanwhile); None on the platform's own host."""
    if connection.schema_name != "public":
        return chain_of_connection()
    tenant = getattr(request, "tenant", None)
    if tenant is not None and getattr(tenant, "schema_name", "public") != "public":
        return tenant.pk
    return None


def platform_actor_id(tenant_id: int, actor_id: str) -> str:
    """How the platform's chain names a workspace's member or token: their id in the workspace,
    and which workspace (`user:1@tenant:7`) — ids restart in every workspace's schema."""
    return f"{actor_id}@tenant:{tenant_id}"


REPEAT_WINDOW_SECONDS = 60


def repeat_window() -> int:
    """The number of the current minute, which `audit_first_in_window` keys its repeats by."""
    return int(timezone.now().timestamp()) // REPEAT_WINDOW_SECONDS


def audit_first_in_window(what: str, request: HttpRequest | None = None) -> bool:
    """Whether `what` (a refusal a client can repeat at will: a revoked or wrong token), from this
    request's address in this workspace, is the first of the current minute, to be audited; the
    repeats of that minute are not (a script retrying a dead token, or someone trying secrets,
    would otherwise append an event per request to the chain). True when Redis cannot say."""
    from django_redis import get_redis_connection
    from redis.exceptions import RedisError

    from apps.tenants.limits import client_bucket

    # The client as the sign-in limits count it: an IPv6 one by its /64 (it could take a new
    # address from it for every request), an IPv4-mapped one as its IPv4 address.
    address = client_bucket(request.META.get("REMOTE_ADDR")) if request is not None else ""
    key = f"foundry:audit-repeat:{connection.schema_name}:{what}:{address}:{repeat_window()}"
    try:
        return bool(get_redis_connection("default").set(key, 1, nx=True, ex=REPEAT_WINDOW_SECONDS * 2))
    except RedisError:
        return True


def audit_actor_erase(
    *, tenant_id: int, actor_id: str, actor: Any = "audit", request: HttpRequest | None = None
) -> bool:
    """Erase an actor's personal data (a data-subject request); events keep the pseudonymous id.

    True if there was something to erase. The chain is untouched, so it still verifies. The
    erasure and its event commit together: none without the other."""
    with transaction.atomic():
        with rls_scope(tenant_id):
            erased = AuditActor.objects.filter(tenant_id=tenant_id, actor_id=actor_id, erased_at__isnull=True).update(
                display_name=None, email=None, erased_at=timezone.now()
            )
        if erased:
            audit_record(
                action="audit.actor.erased", actor=actor, target=("actor", actor_id), chain=tenant_id, request=request
            )
    return bool(erased)


# An event's fields its hash covers, besides its chain's id and its sequence number (chain.event_hash).
HASHED = (
    "occurred_at", "actor_type", "actor_id", "action", "target_type", "target_id", "outcome", "ip", "user_agent",
    "request_id", "details", "prev_hash",
)  # fmt: skip


def audit_checkpoint_sign(tenant_id: int) -> AuditCheckpoint | None:
    """Sign the chain's head with the platform's current key (None: nothing new to sign).

    What is signed is the stored event at the head's sequence number, under the chain's base id:
    the head itself is a cache the app role writes (every append moves it), so its hash and its
    id are never taken on trust (a head made to name another chain's id, or a seq and hash of
    its own, had the platform sign a checkpoint for them). The checkpoint is stored (append-only)
    and, with FOUNDRY_AUDIT_CHECKPOINT_DIR set, also appended to that chain's file there, outside
    the database — also by a later pass, when this one signed it but could not write the file."""
    key = signing_key()
    with rls_scope(tenant_id):
        # The head row held (KEY SHARE: appends, which move it, go on), to the end of this
        # transaction: a purge of the chain waits for this one and deletes its checkpoint with
        # the rest. One that holds it (FOR UPDATE: a purge, a prune) is not waited for: the chain
        # is left to the next pass (SKIP LOCKED), and the other chains are signed meanwhile.
        head = AuditChain.objects.raw(
            f"SELECT {columns_of(AuditChain, 'c')} FROM public.audit_auditchain c WHERE c.tenant_id = %s"  # noqa: S608
            " FOR KEY SHARE SKIP LOCKED",
            [tenant_id],
        )
        head = next(iter(head), None)
        if head is None or head.seq == 0:
            return None
        hash_id = audit_chain_base(tenant_id).hash_tenant_id
        signed = AuditCheckpoint.objects.filter(tenant_id=tenant_id, seq=head.seq, key_id=key.key_id).first()
        if signed is not None:
            # Signed already (the common case: a head that did not move) — if by the platform, of
            # this hash: the app role may insert checkpoints, and a row of its making is neither
            # taken for a signature nor copied to the file kept outside the database. The head is
            # signed once the chain moves on.
            if signed.hash == head.hash and checkpoint_signed(
                {**checkpoint_dict(signed), "signed_at": signed.signed_at}, chain_ids={tenant_id}, hash_id=hash_id
            ):
                _checkpoint_file_append(signed)
            else:
                logger.error(
                    "audit chain %s: the checkpoint of #%s under key %s is not the platform's signature of that"
                    " event (inserted by hand?); not signed, not written to the checkpoint file",
                    tenant_id,
                    head.seq,
                    key.key_id,
                )
            return None
        event = AuditEvent.objects.filter(tenant_id=tenant_id, seq=head.seq).values(*HASHED, "hash").first()
        stored = event["hash"] if event else None
        if stored is None or stored != head.hash:
            logger.error("audit chain %s: its head (#%s) is not its stored event; not signed", tenant_id, head.seq)
            return None
        # Hashed under that id, too: the base is the app role's to write, and one naming another
        # chain's id had the platform sign this chain's event as that chain's (which the other
        # chain's base, naming this one in `signed_as`, then took for its own).
        if event_hash(tenant_id=hash_id, seq=head.seq, **{name: event[name] for name in HASHED}) != stored:
            logger.error(
                "audit chain %s: #%s is not hashed as chain %s, its base says; not signed", tenant_id, head.seq, hash_id
            )
            return None
        # The database's clock, which dates the events, not this process's (a host whose clock
        # runs behind would date a checkpoint before the event it vouches for), and never
        # before that event (the chain's times never go back, even if the server's clock is set back).
        with connection.cursor() as cursor:
            cursor.execute("SELECT greatest(clock_timestamp(), %s)", [event["occurred_at"]])
            signed_at = cursor.fetchone()[0]
        message = checkpoint_message(
            chain_id=tenant_id, tenant_id=hash_id, seq=head.seq, hash=stored, signed_at=signed_at
        )
        try:
            with transaction.atomic():  # another signer of the same head at the same moment
                checkpoint = AuditCheckpoint.objects.create(
                    tenant_id=tenant_id,
                    seq=head.seq,
                    hash=stored,
                    signed_at=signed_at,
                    key_id=key.key_id,
                    signature=key.sign(message),
                )
        except IntegrityError:
            return None
    _checkpoint_file_append(checkpoint)
    return checkpoint


def _checkpoint_file_append(checkpoint: AuditCheckpoint) -> None:
    """Append the checkpoint to its chain's file (FOUNDRY_AUDIT_CHECKPOINT_DIR), unless it is the
    file's last line already (a later pass writing what a failed write left out finds it there).

    A checkpoint behind the file's last line is appended too: a chain restored from a backup goes
    on from the backup's head, under numbers the file holds from before, and its new tail must be
    vouched for outside the database as well (the lines from before then show, as they should,
    that the events after the backup were lost). Signers of one chain take turns on its file."""
    if not settings.FOUNDRY_AUDIT_CHECKPOINT_DIR:
        return
    directory = Path(settings.FOUNDRY_AUDIT_CHECKPOINT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"chain-{checkpoint.tenant_id}.jsonl"
    signed = checkpoint_dict(checkpoint)
    with path.open("a+b") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file is closed
        file.seek(max(0, file.seek(0, os.SEEK_END) - 4096))
        tail = file.read()
        try:
            last = json.loads(tail.splitlines()[-1]) if tail.strip() else {}
        except (ValueError, RecursionError):
            last = {}
        if last == json.loads(json.dumps(signed)):
            return
        line = json.dumps(signed, sort_keys=True) + "\n"
        file.write((line if not tail or tail.endswith(b"\n") else "\n" + line).encode())


def audit_chain_base_set(*, tenant_id: int, hash_tenant_id: int, signed_as: list[int] | None = None) -> None:
    """Say that chain `tenant_id` is hashed under `hash_tenant_id` (an imported chain: its events,
    inserted as they were, keep the hashes and signatures of the tenant they were written for),
    and was stored under `signed_as` before (the ids its checkpoints signed there name).

    Call after inserting the imported events and before appending any: the head is dropped, so
    the next append rebuilds it from the last imported event under the right id."""
    lineage = sorted(set(signed_as or ()) - {tenant_id, hash_tenant_id}) or None
    with rls_scope(tenant_id):
        AuditChainBase.objects.update_or_create(
            tenant_id=tenant_id,
            defaults={"hash_tenant_id": hash_tenant_id, "signed_as": lineage, "updated_at": timezone.now()},
        )
        with connection.cursor() as cursor:  # the owner's function (migrations/0008)
            cursor.execute("SELECT public.audit_chain_head_drop(%s)", [tenant_id])


def audit_prune(*, tenant_id: int, before: datetime) -> int:
    """Delete chain `tenant_id`'s events that happened before `before` — retention, when the
    workspace's audit trail is not on legal hold — and the checkpoints that vouched for them.

    Only whole stretches up to a signed checkpoint go: the chain then starts after the last
    signed checkpoint at or before the boundary, which stays and vouches for the new start
    (verify.py), so the rest of the chain still verifies. The chain's last event always stays.
    The owner's function does it (migrations/0008): the app role may not delete from the trail.

    An enabled SIEM sink holds the boundary back to the first event it has not received: delivery
    skips nothing, so the prune does not take what a sink is still to deliver (one down for longer
    than the retention period would otherwise lose those events without a word). A disabled sink
    holds nothing. Returns the number of events deleted."""
    undelivered = _first_undelivered(tenant_id)
    if undelivered is not None and undelivered < before:
        logger.info("audit prune of chain %s held back to %s by a sink's delivery", tenant_id, undelivered)
        before = undelivered
    with connection.cursor() as cursor:
        cursor.execute("SELECT public.audit_chain_prune(%s, %s)", [tenant_id, before])
        return cursor.fetchone()[0]


def _first_undelivered(tenant_id: int) -> datetime | None:
    """When the first event of the chain an enabled sink has not received yet happened (None:
    every sink has every event, or there is no enabled sink)."""
    with rls_scope(tenant_id):
        cursor = AuditSink.objects.filter(tenant_id=tenant_id, enabled=True).aggregate(low=models.Min("cursor"))["low"]
        if cursor is None:
            return None
        return (
            AuditEvent.objects.filter(tenant_id=tenant_id, seq__gt=cursor)
            .order_by("seq")
            .values_list("occurred_at", flat=True)
            .first()
        )


def checkpoint_dict(checkpoint: AuditCheckpoint) -> dict:
    """A checkpoint as exported: everything a verifier needs besides the public key."""
    return {
        "tenant_id": checkpoint.tenant_id,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "signed_at": time_text(checkpoint.signed_at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }

"""`Idempotency-Key` on the API's writes (draft-ietf-httpapi-idempotency-key-header): a client
that sends a key with a POST, PUT, PATCH or DELETE and retries it with the same key (its answer
lost to a timeout, a dropped connection) gets the first answer again instead of a second run,
token or invitation.

The key is claimed by inserting its row in the transaction the write runs in, and the answer is
stored in that same transaction: the write and its record commit together or not at all, so no
crash between the two can make a retry do the write again. A retry that arrives while the first
request is still running waits on that row (FOUNDRY_IDEMPOTENCY_WAIT_SECONDS), then is answered
from it, or with 409 `idempotency_key_in_use`. Only successes (2xx) are kept: a refused request
changed nothing, so its retry runs again (the workspace may have changed meanwhile). A key is one
caller's (the principal the audit trail names) in one workspace (each schema has its own table),
for FOUNDRY_IDEMPOTENCY_HOURS; the same key with another method, path, query or body is 422
`idempotency_key_reused`; a replay goes only to the caller standing as it did (its role and
scopes), else 409 `idempotency_key_stale`. Stored answers are encrypted like every secret
(apps/providers/encryption.py): one may hold a new token's secret, shown once.
"""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.http import HttpResponse, QueryDict
from django.http.response import HttpResponseBase

from apps.audit.services import actor_of
from apps.providers.encryption import (
    SecretUndecryptable,
    encryption_available,
    secret_decrypt,
    secret_encrypt,
    secret_is_current,
    secret_place,
    secret_rotate,
)
from apps.providers.services import RotationCounts
from apps.tokens.models import IdempotencyKey, Scope
from foundry.errors import ServiceError

# The key row this request claimed, while its handler runs (None: none).
_claimed: ContextVar[int | None] = ContextVar("idempotency_claimed", default=None)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_LENGTH = 255
_TABLE = IdempotencyKey._meta.db_table
_LOCK_NOT_AVAILABLE = "55P03"


def idempotency_key_of(request) -> str | None:
    """The request's key, or None; 400 `idempotency_key_invalid` unless it is 1 to 255 visible ASCII
    characters (as a bare token, or the draft's quoted structured-field string)."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 0 < len(key) <= MAX_LENGTH or not all("!" <= char <= "~" for char in key):
        raise ServiceError(
            "idempotency_key_invalid",
            f"{HEADER} is 1 to {MAX_LENGTH} visible ASCII characters (a UUID is a good one).",
        )
    return key


def idempotent_answer(*, request, key: str, answer: Callable[[], HttpResponseBase]) -> HttpResponseBase:
    """`answer()` (the view's handler, its response rendered) run once per caller and key: a
    retry of it gets the stored response, marked `Idempotent-Replayed: true`."""
    if not encryption_available():
        raise ServiceError(
            "encryption_not_configured",
            f"The platform has no encryption key (FOUNDRY_ENCRYPTION_KEYS), so it cannot keep answers to {HEADER}.",
            status=503,
        )
    principal = actor_of(request.user).id
    fingerprint, standing = _fingerprint(request), _standing(request.user)
    with transaction.atomic():
        claimed = _claim(principal, key, fingerprint, standing)
        if claimed is None:
            return _replayed(principal, key, fingerprint, standing)
        token = _claimed.set(claimed)
        try:
            response = answer()  # an exception it raises (a 500) rolls the write and the claim back
        finally:
            _claimed.reset(token)
        try:
            if 200 <= response.status_code < 300 and not response.streaming:
                _store(claimed, response)
            else:
                IdempotencyKey.objects.filter(pk=claimed).delete()
        except DatabaseError:  # the handler left the transaction failed: keep nothing of it
            transaction.set_rollback(True)
    return response


def _fingerprint(request) -> str:
    """What a retry must repeat: the method, the path with its query, and the body's JSON (its
    keys sorted: a client may serialise the same object in another order)."""
    data = request.data
    if isinstance(data, QueryDict):
        data = dict(data.lists())
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    message = "\x00".join((request.method, request.get_full_path(), body))
    secret = hashlib.sha256(b"foundry-idempotency:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(secret, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _standing(principal) -> str:
    """The caller's role and the scopes it holds, as a replay must find them again."""
    scopes = [scope for scope in Scope.values if not hasattr(principal, "has_scope") or principal.has_scope(scope)]
    return f"{getattr(principal, 'role', '')}:{','.join(scopes)}"


def _claim(principal: str, key: str, fingerprint: str, standing: str) -> int | None:
    """This request's row for the key (new, or taking over one past its time), or None when a
    live one stands: committed by an earlier request, or by one that was running and has ended
    while this one waited for it."""
    # At least 1 ms: PostgreSQL reads a lock_timeout of 0 as no limit at all.
    wait = f"{max(1, int(settings.FOUNDRY_IDEMPOTENCY_WAIT_SECONDS * 1000))}ms"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)", [wait])
        previous = cursor.fetchone()[0]
        try:
            cursor.execute(
                f"INSERT INTO {_TABLE} AS k (principal, key, fingerprint, standing, created_at, status_code,"  # noqa: S608 -- the model's table
                " content_type, location, body_encrypted) VALUES (%s, %s, %s, %s, now(), 0, '', '', '')"
                " ON CONFLICT (principal, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
                " standing = EXCLUDED.standing, created_at = EXCLUDED.created_at, status_code = 0,"
                " content_type = '', location = '', body_encrypted = ''"
                " WHERE k.created_at < now() - make_interval(secs => %s) RETURNING k.id",
                [principal, key, fingerprint, standing, settings.FOUNDRY_IDEMPOTENCY_HOURS * 3600],
            )
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise _in_use() from None
            raise
        row = cursor.fetchone()
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    return None if row is None else row[0]


def _in_use() -> ServiceError:
    return ServiceError(
        "idempotency_key_in_use",
        f"A request with this {HEADER} is still being answered; retry shortly for its answer.",
        status=409,
    )


def _replayed(principal: str, key: str, fingerprint: str, standing: str) -> HttpResponse:
    stored = IdempotencyKey.objects.filter(principal=principal, key=key).first()
    if stored is None:  # removed past its time between the claim and this read
        raise _in_use()
    if not hmac.compare_digest(stored.fingerprint, fingerprint):
        raise ServiceError(
            "idempotency_key_reused",
            f"This {HEADER} was sent with another request (method, path, query or body); use a new key for a new"
            " request.",
            status=422,
        )
    if stored.standing != standing:
        # The request was done; its answer (an owner's invitation link, say) is for the role it
        # was made under, which the service checked then and a replay does not check again.
        raise ServiceError(
            "idempotency_key_stale",
            f"The request sent with this {HEADER} was done, but your role or scopes have changed since, so its"
            " answer is not sent again. Read the result, or use a new key for a new request.",
            status=409,
        )
    body = base64.b64decode(secret_decrypt(stored.body_encrypted, place=secret_place(_TABLE, stored.pk)))
    response = HttpResponse(body, status=stored.status_code, content_type=stored.content_type)
    if stored.location:
        response["Location"] = stored.location
    response[REPLAYED_HEADER] = "true"
    return response


def _store(claimed: int, response: HttpResponseBase) -> None:
    body = base64.b64encode(response.content).decode("ascii")
    IdempotencyKey.objects.filter(pk=claimed).update(
        status_code=response.status_code,
        content_type=response.get("Content-Type", "")[:100],
        location=response.get("Location", "")[:2000],
        body_encrypted=secret_encrypt(body, place=secret_place(_TABLE, claimed)),
    )


def idempotency_keys_expire() -> int:
    """Delete this workspace's keys past FOUNDRY_IDEMPOTENCY_HOURS; how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_TABLE} WHERE created_at < now() - make_interval(secs => %s)",  # noqa: S608 -- the model's table
            [settings.FOUNDRY_IDEMPOTENCY_HOURS * 3600],
        )
        return cursor.rowcount


def idempotency_keys_forget() -> int:
    """Delete every answer this workspace keeps (a person's erasure: the answers are sealed, so
    which of them name the person cannot be searched) but the claim of the request under way,
    whose answer is still to be kept; how many. Retries of the writes they answered run again."""
    return IdempotencyKey.objects.exclude(pk=_claimed.get()).delete()[0]


@transaction.atomic
def idempotency_keys_rotate() -> RotationCounts:
    """Seal this workspace's stored answers again under the first encryption key (idempotent);
    one no key opens is counted `idempotency answer <key id>`."""
    counts = RotationCounts(undecryptable=[])
    for stored in IdempotencyKey.objects.select_for_update().exclude(body_encrypted="").only("pk", "body_encrypted"):
        place = secret_place(_TABLE, stored.pk)
        if secret_is_current(stored.body_encrypted, place=place):
            counts.current += 1
            continue
        try:
            stored.body_encrypted = secret_rotate(stored.body_encrypted, place=place)
        except SecretUndecryptable:
            counts.undecryptable.append(f"idempotency answer {stored.pk}")
            continue
        stored.save(update_fields=["body_encrypted"])
        counts.rotated += 1
    return counts

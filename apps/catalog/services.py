"""Publish, roll back, deploy and migrate domains and agents. Every write goes through here."""

import json
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.permissions import Permission
from apps.accounts.services import allowed_now
from apps.audit.services import audit_record
from apps.catalog.models import Deployment, Document, Kind, Version
from foundry.errors import ServiceError
from foundry.manifests import DocumentError, Resolution, Validated, digest, validate
from foundry.manifests.diff import Change, structural_diff, text_diff
from foundry.manifests.loader import compose
from foundry.manifests.loader import load as manifest_load
from foundry.text import text_readable

MAX_MESSAGE = 500
# Who publishes (or rolls back) a document of each kind.
EDIT = {Kind.DOMAIN: Permission.DOMAINS_EDIT, Kind.AGENT: Permission.AGENTS_EDIT}


class DocumentInvalid(ServiceError):
    """A document with problems: `details` is the list of problems (code, message, file, line, column)."""

    status = 422

    def __init__(self, result: Validated, message: str = "The document has problems."):
        super().__init__("document_invalid", message, details=[p.as_dict() for p in result.problems])
        self.result = result


def domain_resolve(name: str, number: int) -> Resolution:
    """Resolve an agent's DIS pin against this tenant's published domain versions."""
    version = Version.objects.filter(document__kind=Kind.DOMAIN, document__name=name, number=number).first()
    if version is not None:
        return Resolution(version.content)
    latest = Document.objects.filter(kind=Kind.DOMAIN, name=name).values_list("latest_number", flat=True).first()
    if latest is None:
        return Resolution(code="dis_not_found", message=f"There is no domain {name!r}.")
    return Resolution(
        code="dis_version_not_found",
        message=f"Domain {name!r} has no version {number} (latest is {latest}).",
        field="version",
    )


def document_validate(source: str | bytes, file: str = "<input>") -> Validated:
    return validate(source, file, domains=domain_resolve)


def author_of(actor) -> tuple[str, str]:
    """(name, email) to record as a version's author, for a member or an API token."""
    token = getattr(actor, "token", None)
    if token is not None:
        return f"API token {token.prefix} ({token.name})", f"token+{token.prefix}@api.invalid"
    name = getattr(actor, "display_name", None) or str(actor)
    return name, getattr(actor, "email", "") or "unknown@invalid"


def _message_clean(message: str | None, default: str) -> str:
    """The message as stored: checked as given (str.strip() takes control characters such as
    U+0085 or U+001F for spaces), then stripped; blank, the default."""
    message = message or ""
    if len(message) > MAX_MESSAGE or not text_readable(message, lines=True):
        raise ServiceError("message_invalid", f"A message is at most {MAX_MESSAGE} printable characters.")
    return message.strip() or default


def _document_lock(kind: str, name: str) -> Document:
    """The document row, created if new, locked until the end of the transaction."""
    try:
        with transaction.atomic():
            Document.objects.get_or_create(kind=kind, name=name)
    except IntegrityError:
        pass  # created concurrently: it exists now
    return Document.objects.select_for_update().get(kind=kind, name=name)


def _catalog_lock() -> None:
    """Hold the workspace's catalog until the transaction ends: versions are committed one at a
    time, in the order of their `created_at`, which orders the git history (apps/catalog/
    history.py). Two publishes at once would otherwise commit in either order, and one committed
    late would slip in before commits a client had already fetched, moving its tags. Taken before
    any row lock, so it never waits on a lock held by a transaction that waits on it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('foundry.catalog'), hashtext(current_schema()))")


def _as_stored(content: dict) -> dict:
    """`content` as its jsonb column gives it back (PostgreSQL's numbers: -0.0 is 0.0, 1.0e+16 an
    integer): stored and hashed as that, so a version's content always hashes to its digest."""
    field = Version._meta.get_field("content")
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [field.get_db_prep_value(content, connection)])
        return json.loads(cursor.fetchone()[0])


def _version_create(
    document: Document,
    *,
    source: str,
    content: dict,
    digest: str,
    author,
    message: str,
    restored_from: Version | None = None,
) -> Version:
    name, email = author_of(author)
    domain_version = None
    if document.kind == Kind.AGENT:
        pin = content["spec"]["domain"]
        domain_version = Version.objects.get(
            document__kind=Kind.DOMAIN, document__name=pin["name"], number=pin["version"]
        )
    document.latest_number += 1
    document.save(update_fields=["latest_number"])
    return Version.objects.create(
        document=document,
        number=document.latest_number,
        digest=digest,
        source=source,
        content=content,
        message=message,
        author_name=name[:255],
        author_email=email[:255],
        restored_from=restored_from,
        domain_version=domain_version,
    )


@dataclass(frozen=True)
class Published:
    version: Version
    created: bool  # False: the content equals the latest version's, which is returned


@transaction.atomic
def version_publish(
    *,
    actor,
    source: str | bytes,
    message: str | None = None,
    kind: str | None = None,
    file: str = "<input>",
    request=None,
) -> Published:
    """Validate and publish a document as its next version (no-op if the content is unchanged)."""
    result = document_validate(source, file)
    if not result.ok:
        raise DocumentInvalid(result)
    if kind is not None and result.kind != kind:
        raise ServiceError("kind_mismatch", f"Expected a {kind} document, got a {result.kind}.")
    message = _message_clean(message, f"Publish {result.name}")  # refused also where nothing changes
    content = _as_stored(result.data)
    content_digest = digest(content)
    _catalog_lock()
    # The author as they stand now, their row held to the commit: an erasure of them waits for the
    # version, then rewrites it; one committed meanwhile refuses it, as a demotion does (PermissionDenied).
    actor = allowed_now(actor, EDIT[result.kind])
    document = _document_lock(result.kind, result.name)
    latest = document.versions.order_by("-number").first()
    # A version published before digests were taken of the stored form holds the parsed one's.
    if latest is not None and latest.digest in (content_digest, digest(result.data)):
        return Published(latest, created=False)
    text = source.decode() if isinstance(source, bytes) else source
    version = _version_create(
        document, source=text, content=content, digest=content_digest, author=actor, message=message
    )
    audit_record(
        action=f"{'dis' if document.kind == Kind.DOMAIN else 'agent'}.publish",
        actor=actor,
        target=version,
        data={"name": document.name, "version": version.number, "digest": content_digest},
        request=request,
    )
    return Published(version, created=True)


@transaction.atomic
def version_rollback(*, actor, document: Document, number: int, message: str | None = None, request=None) -> Published:
    """A new version whose content equals version `number` (no-op if the latest already does)."""
    _catalog_lock()
    actor = allowed_now(actor, EDIT[document.kind])  # as a publish does
    document = Document.objects.select_for_update().get(pk=document.pk)
    old = version_get(document, number)
    message = _message_clean(message, f"Roll back {document.name} to v{old.number}")  # also where nothing changes
    latest = document.versions.order_by("-number").first()
    # Compared, and the new version's digest taken, as the content is stored: a version published
    # before digests were taken of the stored form holds the parsed one's.
    content_digest = digest(old.content)
    if digest(latest.content) == content_digest:
        return Published(latest, created=False)
    # A rollback publishes: the old content must pass today's checks (one published by an older
    # release may hold what they now refuse).
    folder = "domains" if document.kind == Kind.DOMAIN else "agents"
    result = document_validate(old.source, f"{folder}/{document.name}.yaml")
    if not result.ok:
        raise DocumentInvalid(result, f"{document.name}@{old.number} is not valid today; fix it and publish instead.")
    version = _version_create(
        document,
        source=old.source,
        content=old.content,
        digest=content_digest,
        author=actor,
        message=message,
        restored_from=old,
    )
    audit_record(
        action=f"{'dis' if document.kind == Kind.DOMAIN else 'agent'}.rollback",
        actor=actor,
        target=version,
        data={"name": document.name, "version": version.number, "restored_from": old.number},
        request=request,
    )
    return Published(version, created=True)


def version_get(document: Document, number) -> Version:
    text = str(number)
    valid = text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) < 2**31
    version = document.versions.filter(number=int(text)).first() if valid else None
    if version is None:
        raise ServiceError("version_not_found", f"{document.name} has no version {text[:20]}.", status=404)
    return version


@dataclass(frozen=True)
class Diff:
    old: Version
    new: Version
    changes: list[Change]
    text: str


def version_diff(document: Document, old_number, new_number) -> Diff:
    old, new = version_get(document, old_number), version_get(document, new_number)
    label = f"{document.kind}s/{document.name}.yaml"
    return Diff(
        old,
        new,
        structural_diff(document.kind, old.content, new.content),
        text_diff(old.source, new.source, f"{label}@{old.number}", f"{label}@{new.number}"),
    )


def _deploy(document: Document, version: Version, *, actor, reason: str, request=None) -> Deployment:
    deployment = Deployment.objects.create(
        agent=document,
        version=version,
        domain_version=version.domain_version,
        reason=reason,
        deployed_by=author_of(actor)[0][:255],
        created_at=timezone.now(),
    )
    document.live = deployment
    document.save(update_fields=["live"])
    audit_record(
        action="agent.deploy",
        actor=actor,
        target=version,
        data={
            "agent": document.name,
            "version": version.number,
            "domain": version.domain_version.document.name,
            "domain_version": version.domain_version.number,
            "reason": reason,
        },
        request=request,
    )
    return deployment


def agent_deploy(*, actor, document: Document, number, request=None) -> Deployment:
    """Make an agent version live. Runs already started keep the versions they started with."""
    return agent_deploy_made(actor=actor, document=document, number=number, request=request)[0]


@transaction.atomic
def agent_deploy_made(*, actor, document: Document, number, request=None) -> tuple[Deployment, bool]:
    """`agent_deploy`, and whether this call made the deployment (False: that version was live
    already — also when another deploy of it, at the same moment, made it first)."""
    if document.kind != Kind.AGENT:
        raise ServiceError("not_an_agent", "Only agents are deployed.")
    actor = allowed_now(actor, Permission.AGENTS_DEPLOY)  # who deploys, as they stand now (the deployment names them)
    document = Document.objects.select_for_update().get(pk=document.pk)
    version = version_get(document, number)
    if document.live_id and document.live.version_id == version.pk:
        return document.live, False
    # As a rollback does: the version must pass today's checks (one published by an older release
    # may hold what they now refuse), so a deploy is no way around them.
    result = document_validate(version.source, f"agents/{document.name}.yaml")
    if not result.ok:
        raise DocumentInvalid(
            result, f"{document.name}@{version.number} is not valid today; fix it and publish a new version instead."
        )
    return _deploy(document, version, actor=actor, reason=Deployment.Reason.DEPLOY, request=request), True


def _pin_rewrite(source: str, number: int) -> str:
    """The manifest source with its domain pin (spec.domain.version) replaced by `number`:
    comments, layout and any tag or anchor on the pin kept (`!!int 1`, `&v 1`, `+1`, `0x1` are
    all the integer 1 in YAML; the pin's last token is the number itself)."""
    # Read as validation reads it (libyaml, timestamps kept as written): a source it accepted
    # (a tab after a colon, a date that is no date) is read here too. libyaml skips a byte-order
    # mark without counting it in its marks: the text after it is what they index.
    bom = "\ufeff" if source.startswith("\ufeff") else ""
    text = source[len(bom) :]
    node = compose(text)
    for key in ("spec", "domain", "version"):
        node = next(value for name, value in node.value if name.value == key)
    start, end = node.start_mark.index, node.end_mark.index
    try:
        token = text[start:end].split()[-1]
        at = text.rindex(token, start, end)
    except (IndexError, ValueError):  # marks that do not point at the pin
        raise ServiceError("pin_unreadable", "spec.domain.version could not be rewritten in place.") from None
    rewritten = bom + text[:at] + str(number) + text[at + len(token) :]
    # An anchor shared with other values (`version: &one 1` … `max_steps: *one`), or a pin that
    # is itself an alias, would carry the new number to them too: only the pin may change.
    try:
        before, after = manifest_load(source).data, manifest_load(rewritten).data
    except DocumentError:
        raise ServiceError("pin_unreadable", "spec.domain.version could not be rewritten in place.") from None
    after["spec"]["domain"]["version"] = before["spec"]["domain"]["version"]
    if after != before:
        raise ServiceError(
            "pin_shared",
            "spec.domain.version shares a YAML anchor with other values; write the pin as a plain number, "
            "publish that version, then migrate.",
        )
    return rewritten


@dataclass(frozen=True)
class Migration:
    deployment: Deployment
    changed: bool


@transaction.atomic
def agent_migrate(*, actor, document: Document, domain_number=None, request=None) -> Migration:
    """Re-pin the live manifest to a newer DIS version and redeploy it, only if it is valid there."""
    if document.kind != Kind.AGENT:
        raise ServiceError("not_an_agent", "Only agents are migrated.")
    _catalog_lock()  # it publishes: the catalog's lock before the agent's row (_catalog_lock)
    actor = allowed_now(actor, Permission.AGENTS_DEPLOY)  # as a publish does
    document = Document.objects.select_for_update().get(pk=document.pk)
    if document.live is None:
        raise ServiceError("not_deployed", f"{document.name} is not deployed; deploy a version first.", status=409)
    live = document.live.version
    domain = live.domain_version.document
    target = version_get(domain, domain.latest_number if domain_number is None else domain_number)
    if target.number == live.domain_version.number:
        return Migration(document.live, changed=False)
    if target.number < live.domain_version.number:
        raise ServiceError(
            "domain_version_older",
            f"{document.name} is on {domain.name} v{live.domain_version.number}; roll back the agent to go back.",
        )
    source = _pin_rewrite(live.source, target.number)
    result = document_validate(source, f"agents/{document.name}.yaml")
    if not result.ok:
        raise DocumentInvalid(
            result, f"{document.name}@{live.number} is not valid against {domain.name} v{target.number}."
        )
    published = version_publish(
        actor=actor,
        source=source,
        kind=Kind.AGENT,
        message=f"Migrate {document.name} to {domain.name} v{target.number}",
        request=request,
    )
    deployment = _deploy(document, published.version, actor=actor, reason=Deployment.Reason.MIGRATE, request=request)
    return Migration(deployment, changed=True)

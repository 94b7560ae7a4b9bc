"""`[domain:|agent:]NAME@VERSION`: a published version on the server, and fetching it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from foundry.forge.errors import ApiError, ForgeError

if TYPE_CHECKING:
    from foundry.forge.client import Client

NAME = re.compile(r"[a-z][a-z0-9-]{0,62}\Z")  # a domain's or an agent's name, as manifests have it
_REF = re.compile(r"^(?:(?P<kind>domain|agent):)?(?P<name>[a-z][a-z0-9-]{0,62})@(?P<number>[1-9][0-9]{0,9}|latest)\Z")
KIND_ORDER = ("agent", "domain")  # an unprefixed name is looked for among agents first


@dataclass(frozen=True)
class Ref:
    text: str
    name: str
    kind: str | None = None
    number: int | None = None  # None: the latest version


def parse_ref(text: str) -> Ref | None:
    match = _REF.match(text.strip())
    if match is None:
        return None
    number = match["number"]
    return Ref(text, match["name"], match["kind"], None if number == "latest" else int(number))


# The server's 404s that say a document is absent; any other (`unknown_host`: the URL names no
# workspace; `not_found`: no such endpoint) is the server's own answer, shown as it is.
ABSENT = frozenset({"agent_not_found", "domain_not_found", "version_not_found"})


def _document(client: Client, kind: str, name: str) -> dict | None:
    try:
        return client.document(kind, name)
    except ApiError as exc:
        if exc.status == 404 and exc.code in ABSENT:
            return None
        raise


def locate(client: Client, ref: Ref, kind: str | None = None) -> tuple[str, dict]:
    """(kind, document) of a ref: its own kind, else `kind`, else agents then domains (both: refused)."""
    kinds = [ref.kind or kind] if (ref.kind or kind) else list(KIND_ORDER)
    found = [(k, doc) for k in kinds if (doc := _document(client, k, ref.name)) is not None]
    if not found:
        what = f"{kinds[0]} {ref.name!r}" if len(kinds) == 1 else f"agent or domain named {ref.name!r}"
        raise ForgeError("not_found", f"{client.url} has no {what}.")
    if len(found) > 1:
        raise ForgeError(
            "ambiguous_ref",
            f"Both an agent and a domain are named {ref.name!r}: write agent:{ref.text} or domain:{ref.text}.",
        )
    return found[0]


def number_of(ref: Ref, kind: str, document: dict) -> int:
    """The version number a ref means, checked against the document's latest."""
    latest = document["latest_number"]
    if ref.number is None:
        return latest
    if ref.number > latest:
        raise ForgeError("not_found", f"{kind} {ref.name} has no version {ref.number} (latest is {latest}).")
    return ref.number


def fetch(client: Client, ref: Ref, kind: str | None = None) -> dict:
    """The version a ref names, with its `source` and `content`."""
    kind, document = locate(client, ref, kind)
    return client.version(kind, ref.name, number_of(ref, kind, document))

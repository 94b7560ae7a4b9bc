"""Documents on disk: which files a command means, reading them, and validating them together offline.

Offline, the agents' DIS pins resolve to the domain documents given alongside them, by name: a
file has no version number, so the pinned version cannot be checked without a server.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from foundry.forge.errors import ForgeError
from foundry.forge.refs import NAME
from foundry.manifests import Resolution, Validated, validate
from foundry.manifests.loader import MAX_BYTES

SUFFIXES = (".yaml", ".yml")
VERSION_NOT_CHECKED = "Offline, an agent's pinned domain version is not checked: the domain file of that name is used."


@dataclass(frozen=True)
class Source:
    path: str  # as the user will read it in messages
    content: bytes


def unreadable(path: str, exc: OSError | None = None) -> ForgeError:
    reason = (exc.strerror or str(exc)) if exc is not None else "not a readable file"
    return ForgeError("file_unreadable", f"Cannot read {path}: {reason}.")


def collect(paths: list[str]) -> list[str]:
    """Files named, and *.yaml / *.yml under folders named (recursively, hidden files and folders skipped,
    symbolic links to folders not followed). A folder that cannot be listed, or a *.yaml entry
    that is no readable file (a dangling link, a loop), is an error, never silently left out:
    a deploy would publish the rest."""
    files: list[str] = []
    for given in paths:
        if not given.strip():  # `forge deploy "$DOCS"`, DOCS unset: Path("") would be the working folder
            raise ForgeError("file_unreadable", "An empty name is no file or folder.")
        path = Path(given)
        try:
            is_folder = path.is_dir()
        except OSError as exc:  # a folder on the way that cannot be searched, a name too long
            raise unreadable(given, exc) from None
        if not is_folder:
            files.append(given)
            continue
        found = []

        def refuse(exc: OSError, given: str = given) -> None:
            raise unreadable(exc.filename or given, exc)

        for folder, folders, names in os.walk(path, onerror=refuse):
            folders[:] = [name for name in folders if not name.startswith(".")]
            for name in names:
                entry = Path(folder, name)
                if entry.suffix in SUFFIXES and not name.startswith("."):  # an editor's lock file, a draft
                    try:
                        readable = entry.is_file()
                    except OSError as exc:  # listed, but its folder cannot be searched
                        raise unreadable(str(entry), exc) from None
                    if not readable:
                        raise unreadable(str(entry))
                    found.append(entry)
        if not found:
            raise ForgeError("no_documents", f"{given}: no *.yaml or *.yml files in this folder.")
        files.extend(str(p) for p in sorted(found))
    # One file named twice (`domains/` and `./domains/finance.yaml`, an absolute path, `a//b`) is
    # read once, by the first spelling given: it is no second file defining the same document.
    kept: dict[str, str] = {}
    for name in files:
        kept.setdefault(os.path.realpath(name), name)
    return list(kept.values())


def read(path: str) -> Source:
    """The file's bytes, read up to one past the documents' limit (the loader refuses a longer
    one as yaml_too_large): a huge file is never read whole."""
    try:
        with Path(path).open("rb") as file:
            return Source(path, file.read(MAX_BYTES + 1))
    except OSError as exc:
        raise unreadable(path, exc) from None


def read_all(paths: list[str]) -> list[Source]:
    return [read(path) for path in collect(paths)]


@dataclass
class Batch:
    """The outcome of validating files together: one Validated per file, plus notes for the reader."""

    results: list[Validated]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def problems(self) -> list:
        return [p for r in self.results for p in r.problems]


def pin_of(result: Validated) -> tuple[str, int] | None:
    """The agent's pinned domain (name, version); None unless both are well-formed — the name is
    looked for as a file next to the manifest, so never `../x`, `/etc/x` or a name too long for one
    (the manifest's own problems say what is wrong with it)."""
    pin = (result.data or {}).get("spec", {})
    pin = pin.get("domain") if isinstance(pin, dict) else None
    if (
        isinstance(pin, dict)
        and isinstance(pin.get("name"), str)
        and NAME.match(pin["name"])
        and type(pin.get("version")) is int
    ):
        return pin["name"], pin["version"]
    return None


def resolve_by_name(domains: dict[str, dict]):
    """A resolver that answers a pin with the domain document of that name, whatever the version."""

    def resolve(name: str, version: int) -> Resolution:
        if name in domains:
            return Resolution(domains[name])
        return Resolution(code="dis_not_found", message=f"No domain {name!r} among the files given.")

    return resolve


def validate_offline(sources: list[Source]) -> Batch:
    """Validate files together: every file, then again each agent whose pinned domain is among them."""
    results = [validate(s.content, s.path) for s in sources]
    duplicates_flag(results)
    domains = {r.name: r.data for r in results if r.kind == "domain" and r.name}
    resolver = resolve_by_name(domains)
    batch = Batch(results)
    for i, result in enumerate(results):
        pin = pin_of(result) if result.kind == "agent" else None
        if pin is None:
            continue
        if pin[0] in domains:
            extra = [p for p in result.problems if p.code == "duplicate_document"]
            results[i] = validate(sources[i].content, sources[i].path, domains=resolver)
            results[i].problems.extend(extra)
            if VERSION_NOT_CHECKED not in batch.notes:
                batch.notes.append(VERSION_NOT_CHECKED)
        else:
            batch.notes.append(
                f"{result.file}: domain {pin[0]!r} is not among the files given, so the tools' entities were not "
                "checked (give its file too, or validate against a server with --url)."
            )
    return batch


def duplicates_flag(results: list[Validated]) -> None:
    """Two files defining the same domain or agent: ambiguous offline, and two versions on deploy."""
    first: dict[tuple[str, str], str] = {}
    for result in results:
        if not (result.kind and result.name):
            continue
        key = (result.kind, result.name)
        if key not in first:
            first[key] = result.file
            continue
        result.problems.append(
            result.loaded.problem(
                "duplicate_document",
                f"The {result.kind} {result.name!r} is also defined in {first[key]}; give each document once.",
                ("metadata", "name"),
            )
        )


def domain_near(manifest: str, name: str) -> str | None:
    """The domain file laid out as in examples/: ../domains/<name>.yaml next to agents/, or beside it
    (only for a domain's name: a path never leads out of those two folders). A folder that may
    not be searched is `file_unreadable`, as anywhere else forge reads."""
    if not NAME.match(name):
        return None
    folder = Path(manifest).parent
    for where in (folder.parent / "domains", folder):
        for suffix in SUFFIXES:
            candidate = where / f"{name}{suffix}"
            try:  # is_file() hides only "not found": a folder without permission raises
                if candidate.is_file() and not candidate.samefile(manifest):
                    return str(candidate)
            except OSError as exc:
                raise unreadable(str(candidate), exc) from None
    return None

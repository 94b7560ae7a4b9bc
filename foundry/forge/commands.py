"""What each forge command does, apart from its click wiring: each returns the exit code."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from foundry.forge.documents import (
    Batch,
    Source,
    domain_near,
    duplicates_flag,
    pin_of,
    read,
    read_all,
    resolve_by_name,
    unreadable,
    validate_offline,
)
from foundry.forge.errors import INVALID, ApiError, ForgeError
from foundry.forge.output import Output, OutputGone
from foundry.forge.refs import ABSENT, fetch, locate, number_of, parse_ref
from foundry.manifests import Problem, Validated, validate
from foundry.manifests.problems import one_line

if TYPE_CHECKING:
    from foundry.forge.client import Client

# --- validate ---------------------------------------------------------------------------------


def validate_documents(paths: list[str], out: Output, client: Client | None) -> int:
    sources = read_all(paths)
    if client is None:
        batch = validate_offline(sources)
    else:
        with client:
            results = [_validate_on(client, source) for source in sources]
        duplicates_flag(results)  # as offline, and as deploy refuses them
        batch = Batch(results)
    for result in batch.results:
        if result.ok:
            out.say(f"{result.file}: ok ({result.kind} {result.name})")
        out.problems(result.problems)
    for note in batch.notes:
        out.note(note)
    out.say(_summary(batch))
    out.document(
        {
            "valid": batch.ok,
            "server": client.url if client else None,
            "files": [r.as_dict() for r in batch.results],
            "notes": batch.notes,
        }
    )
    return 0 if batch.ok else INVALID


def _validate_on(client: Client, source: Source) -> Validated:
    """The server's verdict on one file (against the tenant's domains); unreadable YAML never leaves."""
    local = validate(source.content, source.path)
    if local.loaded is None:
        return local
    body = client.validate(local.loaded.text, source.path)
    result = Validated(source.path, body.get("kind"), body.get("name"), local.loaded)
    result.problems = [_problem(p, source.path) for p in body.get("problems", [])]
    return result


def _problem(data: dict, file: str) -> Problem:
    """A problem as the API reports it, in `file`: the path the user gave, not the name forge sent
    (shortened past 255 characters, a byte that is not UTF-8 replaced: client._sent_name). One
    that is not the API's shape is the server's fault, said so (`unexpected_response`)."""

    def position(key: str) -> int:
        value = data.get(key) or 1
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
            raise ValueError(key)
        return value

    try:
        if not isinstance(data, dict):
            raise ValueError("problem")
        return Problem(
            code=str(data.get("code", "invalid")),
            message=str(data.get("message", "")),
            file=file,
            line=position("line"),
            column=position("column"),
            path=str(data.get("path", "")),
        )
    except ValueError:
        raise ForgeError(
            "unexpected_response", f"The server reported a problem of {file} forge cannot read — is this a Foundry URL?"
        ) from None


def _summary(batch: Batch) -> str:
    total = len(batch.results)
    files = f"{total} file{'s' if total != 1 else ''}"
    problems = batch.problems()
    if not problems:
        return f"{files} valid."
    bad = sum(not r.ok for r in batch.results)
    return f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {bad} of {files}."


# --- diff -------------------------------------------------------------------------------------


@dataclass
class _Side:
    label: str
    kind: str
    name: str | None
    data: dict
    text: str


def _on_disk(arg: str) -> bool:
    try:
        return Path(arg).exists()
    except OSError as exc:  # a folder on the way that cannot be searched, a name too long
        raise unreadable(arg, exc) from None


def diff_documents(old: str, new: str, out: Output, connect: Callable[[], Client]) -> int:
    args = (old, new)
    refs = [None if _on_disk(arg) else parse_ref(arg) for arg in args]
    sides = [_file_side(arg) if ref is None else None for arg, ref in zip(args, refs, strict=True)]
    problems = [p for side in sides if isinstance(side, Validated) for p in side.problems]
    if problems:
        out.problems(problems)
        out.document({"identical": None, "problems": [p.as_dict() for p in problems]})
        return INVALID
    if any(refs):
        with connect() as client:
            result = _diff_with_server(client, refs, sides)
    else:
        result = _local_diff(*sides)
    _print_diff(result, out)
    out.document(result)
    return 0


def _diff_with_server(client: Client, refs: list, sides: list) -> dict:
    if all(refs):
        return _published_diff(client, *refs)
    kind = next(side.kind for side in sides if side)
    return _local_diff(*(side or _ref_side(client, ref, kind) for side, ref in zip(sides, refs, strict=True)))


def _file_side(path: str) -> _Side | Validated:
    source = read(path)
    result = validate(source.content, path)
    if result.loaded is None or result.kind is None:
        return result  # unreadable YAML or unknown kind: its problems are reported instead
    return _Side(path, result.kind, result.name, result.data, result.loaded.text)


def _ref_side(client: Client, ref, kind: str | None) -> _Side:
    version = fetch(client, ref, kind)
    return _Side(ref.text, version["kind"], version["name"], version["content"], version["source"])


def _published_diff(client: Client, old, new) -> dict:
    """Two versions of one document: the server's diff; of two documents: both fetched."""
    if old.kind and new.kind and old.kind != new.kind:
        raise ForgeError(
            "kind_mismatch", f"{old.text} is {_a(old.kind)} and {new.text} {_a(new.kind)}: nothing to compare."
        )
    kind = old.kind or new.kind
    if old.name != new.name:
        return _local_diff(_ref_side(client, old, kind), _ref_side(client, new, kind))
    kind, document = locate(client, old, kind)
    numbers = [number_of(ref, kind, document) for ref in (old, new)]
    body = client.diff(kind, old.name, *numbers)
    return {"kind": kind, "from": old.text, "to": new.text, "changes": body["changes"], "text": body["text"]}


def _local_diff(old: _Side, new: _Side) -> dict:
    from foundry.manifests.diff import structural_diff, text_diff

    if old.kind != new.kind:
        raise ForgeError(
            "kind_mismatch", f"{old.label} is {_a(old.kind)} and {new.label} {_a(new.kind)}: nothing to compare."
        )
    changes = [change.as_dict() for change in structural_diff(old.kind, old.data, new.data)]
    # The labels escaped: the text is printed line by line, and a file name's line break would
    # start a line of its own in the diff's header (a forged `+++ other`).
    text = text_diff(old.text, new.text, one_line(old.label), one_line(new.label))
    return {"kind": old.kind, "from": old.label, "to": new.label, "changes": changes, "text": text}


_SIGNS = {"added": "+", "removed": "-", "changed": "~"}


def _print_diff(result: dict, out: Output) -> None:
    result["identical"] = not result["changes"] and not result["text"]
    if result["identical"]:
        out.say(f"{result['from']} and {result['to']} are identical.")
        return
    for change in result["changes"]:
        out.say(change_line(change))
    if result["text"]:
        out.say("")
        out.say(result["text"].rstrip("\n"), lines=True)


def change_line(change: dict) -> str:
    """`+ entity payment`, `- tool lookup`, `~ rule big-invoice: when "amount > 10000" → "amount > 5000"`."""
    action, what, name = change.get("action", "changed"), change.get("what", ""), change.get("name", "")
    line = f"{_SIGNS.get(action, '~')} {what}" + (f" {name}" if name and name != what else "")
    if action == "changed":
        line += f": {_delta(change.get('before'), change.get('after'))}"
    return line


_ABSENT = object()


def _delta(before, after) -> str:
    """What differs: per key for two mappings, else the two values."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return f"{_brief(before)} → {_brief(after)}"
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k, _ABSENT) != after.get(k, _ABSENT))
    return "; ".join(f"{key} {_brief(before.get(key, _ABSENT))} → {_brief(after.get(key, _ABSENT))}" for key in keys)


def _brief(value, limit: int = 60) -> str:
    if value is _ABSENT:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


# --- deploy -----------------------------------------------------------------------------------


def deploy_documents(paths: list[str], message: str | None, out: Output, client: Client) -> int:
    sources = read_all(paths)
    batch = validate_offline(sources)
    report = {
        "ok": False,
        "server": client.url,
        "published": [],
        "deployments": [],
        "problems": [],
    }
    if not batch.ok:
        out.problems(batch.problems())
        out.say(f"{_summary(batch)} Nothing was published.")
        report["problems"] = [p.as_dict() for p in batch.problems()]
        out.document(report)
        return INVALID
    # The batch's notes are about what offline validation cannot check: the server checks it next.
    order = sorted(zip(sources, batch.results, strict=True), key=lambda pair: pair[1].kind != "domain")
    with client:
        return _publish_and_deploy(client, order, message, out, report)


def _publish_and_deploy(client: Client, order: list, message: str | None, out: Output, report: dict) -> int:
    where, path, agents, paths = "", None, [], {}
    try:
        for i, (source, result) in enumerate(order, 1):
            where = path = source.path
            status, body = client.publish(result.kind, result.loaded.text, source.path, message)
            version, created = body["version"], bool(body.get("created", status == 201))
            report["published"].append({"file": source.path, "created": created, **version})
            progress = f"  [{i}/{len(order)}]" if out.json else ""
            label = f"{version['kind']} {version['name']} v{version['number']}"
            out.step(f"{label} ({'new' if created else 'unchanged'}){progress}")
            if version["kind"] == "agent":
                agents.append(version)
                paths[version["name"]] = source.path
        for version in agents:
            where = f"agent {version['name']} v{version['number']}"
            path = paths[version["name"]]
            status, deployment = client.deploy(version["name"], version["number"])
            report["deployments"].append({"created": status == 201, **deployment})
            out.step(deployed_line(deployment, created=status == 201))
    except ForgeError as exc:
        if isinstance(exc, ApiError) and not (exc.status == 404 and exc.code not in ABSENT):
            return _refused(exc, where, report, out, path)
        # No refusal of a document: the server failed, limited the rate, could not be read, or
        # answered that the URL names no workspace (`unknown_host`): exit 2, as pull and migrate.
        out.say(f"Stopped at {where}.")
        _already(report, out)
        report["error"] = exc.as_dict()["error"]
        exc.document = report  # what --json prints: what went out, beside the error
        raise
    report["ok"] = True
    out.document(report)
    return 0


def deployed_line(deployment: dict, *, created: bool = True) -> str:
    """agent invoice-triage v7 deployed (pins finance v3; finance v4 is available)"""
    domain = deployment.get("domain") or {}
    pin = f"pins {domain.get('name')} v{domain.get('version')}"
    if deployment.get("domain_outdated"):
        pin += f"; {domain.get('name')} v{deployment.get('domain_latest_version')} is available"
    state = "deployed" if created else "already live"
    return f"agent {deployment['agent']} v{deployment['version']} {state} ({pin})"


def _server_problems(exc: ApiError, where: str, path: str | None = None) -> list[Problem]:
    """The problems a 422 `document_invalid` lists (none for other refusals), in `path` (the file
    forge read) when there is one, else in the file the server names."""
    if not isinstance(exc.details, list):
        return []
    return [_problem(p, path or str(p.get("file") or where)) for p in exc.details if isinstance(p, dict)]


def _already(report: dict, out: Output) -> None:
    """What a deploy that stopped part way had done: the versions published, the agents deployed."""
    if report["published"]:
        done = ", ".join(f"{v['kind']} {v['name']} v{v['number']}" for v in report["published"])
        out.say(f"Already published: {done}.")
    if report["deployments"]:
        done = ", ".join(f"agent {d.get('agent')} v{d.get('version')}" for d in report["deployments"])
        out.say(f"Already deployed: {done}.")


def _refused(exc: ApiError, where: str, report: dict, out: Output, path: str | None = None) -> int:
    """The server refused a publish or deploy: say which, with its problems, and what already went."""
    problems = _server_problems(exc, where, path)
    out.problems(problems)
    out.say(f"{where}: refused by the server: {exc.message} ({exc.code})")
    _already(report, out)
    report["problems"] = [p.as_dict() for p in problems]
    report["error"] = exc.as_dict()["error"]
    out.document(report)
    return INVALID


# --- test -------------------------------------------------------------------------------------


def run_manifest_tests(
    manifest: str,
    domain_files: list[str],
    provider: str,
    names: list[str],
    out: Output,
    connect: Callable[[], Client] | None,
) -> int:
    content = read(manifest).content  # once: a pipe (`forge test /dev/stdin`) is read only once
    result = validate(content, manifest)
    if result.kind == "domain":
        raise ForgeError("not_an_agent", f"{manifest} is a domain; forge test runs an agent manifest's tests.")
    pin = pin_of(result) if result.kind == "agent" else None
    if pin is None:
        return _invalid(result.problems, out)
    domain = _pinned_domain(manifest, pin, domain_files, connect)
    if isinstance(domain, Validated):
        if not domain.ok:
            return _invalid(domain.problems, out)
        out.note(f"Using domain {pin[0]!r} from {domain.file}; offline its version (v{pin[1]} pinned) is not checked.")
        domain_data, domain_from = domain.data, domain.file
    else:
        domain_data, domain_from = domain
    result = validate(content, manifest, domains=resolve_by_name({pin[0]: domain_data}))
    if not result.ok:
        return _invalid(result.problems, out)
    selected = _selected_tests(result, names)
    report = {
        "manifest": manifest,
        "agent": result.name,
        "domain": {"name": pin[0], "version": pin[1], "from": domain_from},
        "provider": provider,
        "passed": True,
        "tests": [],
    }
    if not selected:
        out.say(f"{manifest}: no sandbox tests to run.")
        out.document({**report, "summary": {"total": 0, "passed": 0, "failed": 0}})
        return 0
    outcomes = _run(result.data, domain_data, names, provider, out)
    failed = [o for o in outcomes if not o.passed]
    summary = {"total": len(outcomes), "passed": len(outcomes) - len(failed), "failed": len(failed)}
    summary["duration_ms"] = sum(o.duration_ms for o in outcomes)
    out.say(
        f"{summary['passed']} passed, {summary['failed']} failed"
        f" ({summary['total']} test{'s' if summary['total'] != 1 else ''}, provider {provider})."
    )
    out.document({**report, "passed": not failed, "tests": [o.as_dict() for o in outcomes], "summary": summary})
    return INVALID if failed else 0


def _invalid(problems: list[Problem], out: Output) -> int:
    out.problems(problems)
    out.document({"passed": False, "problems": [p.as_dict() for p in problems]})
    return INVALID


def _pinned_domain(manifest: str, pin: tuple[str, int], domain_files: list[str], connect) -> Validated | tuple:
    """The pinned DIS: among --domain files, else ../domains/<name>.yaml, else from the server."""
    name, number = pin
    candidates = domain_files or [p for p in [domain_near(manifest, name)] if p]
    beside = ""  # the file where the domain is looked for, when it holds another document
    for path in candidates:
        found = validate(read(path).content, path)
        if found.kind == "domain" and found.name == name:
            return found
        if found.kind is None:  # it does not load: which domain it is cannot be told; its problems are said
            return found
        beside = f"{path} is {found.kind} {found.name!r}, not domain {name!r}"
    if domain_files:
        raise ForgeError("domain_not_found", f"None of the --domain files is the domain {name!r} {manifest} pins.")
    if connect is not None:
        with connect() as client:
            try:
                version = client.version("domain", name, number)
            except ApiError as exc:
                if exc.status != 404 or exc.code not in ABSENT:
                    raise
                raise ForgeError("domain_not_found", f"{client.url} has no domain {name} v{number}.") from None
            label = f"{client.url} ({name} v{number})"
            # Read from its source as a file would be, not taken as the server shaped it: a
            # version of another shape is the server's fault, said as such (not a crash of the tests).
            source = version.get("source")
            found = validate(source, label) if isinstance(source, str) else None
            if found is None or not found.ok or found.kind != "domain" or found.name != name:
                raise ForgeError("unexpected_response", f"{label} is not a valid domain {name!r}.")
            return found.data, label
    if beside:
        raise ForgeError(
            "domain_not_found",
            f"{manifest} pins domain {name!r} v{number} and {beside}: give --domain FILE, "
            "or fetch it from a server with --url and --token.",
        )
    raise ForgeError(
        "domain_not_found",
        f"{manifest} pins domain {name!r} v{number}: give --domain FILE, put it at ../domains/{name}.yaml, "
        "or fetch it from a server with --url and --token.",
    )


def _selected_tests(result: Validated, names: list[str]) -> list[str]:
    spec = result.data.get("spec", {})
    available = [t["name"] for t in spec.get("tests") or [] if isinstance(t, dict) and "name" in t]
    unknown = [n for n in names if n not in available]
    if unknown:
        known = ", ".join(available) or "none"
        raise ForgeError("test_not_found", f"{result.file} has no test {unknown[0]!r} (its tests: {known}).")
    return names or available


# A real provider's connection for `forge test`, from the environment (the vendors' own names).
PROVIDER_ENVIRONMENT = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
}


def provider_connection(provider: str, environ=os.environ):
    """Credentials of `provider` from the environment; None for the scripted provider.

    Addresses: this is the developer's own machine, so private and loopback ones (a local
    Ollama or vLLM) are allowed; link-local (cloud metadata) stays refused."""
    from foundry.runtime.network import NetworkPolicy
    from foundry.runtime.sandbox import ProviderConnection

    if provider not in PROVIDER_ENVIRONMENT:
        return None
    key_variable, url_variable = PROVIDER_ENVIRONMENT[provider]
    if not environ.get(key_variable, "").strip():
        raise ForgeError(
            "provider_credentials_missing",
            f"--provider {provider} needs {key_variable} in the environment"
            f" (and {url_variable} for an endpoint other than the vendor's own).",
        )
    credentials = {"api_key": environ[key_variable]}
    if environ.get(url_variable):
        credentials["base_url"] = environ[url_variable]
    return ProviderConnection(credentials=credentials, network=NetworkPolicy(allow_private=True))


def _run(manifest: dict, domain: dict, names: list[str], provider: str, out: Output) -> list:
    connection = provider_connection(provider)
    try:
        from foundry.runtime.sandbox import run_tests
    except ImportError as exc:
        raise ForgeError("runtime_unavailable", f"The agent runtime cannot be loaded: {exc}.") from None

    def progress(outcome) -> None:
        try:
            out.step(outcome_lines(outcome), lines=True)
        except (OSError, OutputGone) as exc:  # stdout's reader went away, a full disk: not the runtime's failure
            raise _Unwritten(exc) from exc

    try:
        return run_tests(
            manifest, domain, names=names or None, provider=provider, on_progress=progress, connection=connection
        )
    except _Unwritten as exc:
        raise exc.error from None  # cli.main says what it says of any output that cannot be written
    except Exception as exc:  # noqa: BLE001 - a provider or runtime failure is reported in one line
        code, message = getattr(exc, "code", "runtime_failed"), getattr(exc, "message", None)
        raise ForgeError(str(code), f"The tests could not run: {message or f'{type(exc).__name__}: {exc}'}") from None


class _Unwritten(Exception):
    """The progress of `forge test` could not be written (`error`)."""

    def __init__(self, error: OSError | OutputGone):
        super().__init__(str(error))
        self.error = error


def outcome_lines(outcome) -> str:
    """PASS small-invoice-is-approved (2 steps, 12 ms), then one indented line per failure."""
    verdict = "PASS" if outcome.passed else "FAIL"
    lines = [f"{verdict} {outcome.name} ({outcome.steps} steps, {outcome.duration_ms:.0f} ms)"]
    lines += [f"    {failure}" for failure in outcome.failures]
    return "\n".join(lines)


# --- migrate ----------------------------------------------------------------------------------


def migrate_agent(name: str, domain_version: int | None, out: Output, client: Client) -> int:
    """Re-pin a deployed agent to a newer domain version and redeploy it, if it is valid there."""
    where = f"agent {name}"
    try:
        migration = client.migrate(name, domain_version)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        problems = _server_problems(exc, where)
        out.problems(problems)
        out.say(f"{where}: not migrated: {exc.message} ({exc.code})")
        out.document({"ok": False, "error": exc.as_dict()["error"]})
        return INVALID
    deployment = migration["deployment"]
    pin = deployment["domain"]
    if migration["changed"]:
        out.step(deployed_line(deployment))
    else:
        out.step(f"agent {name} v{deployment['version']} already pins {pin['name']} v{pin['version']}")
    out.document({"ok": True, **migration})
    return 0

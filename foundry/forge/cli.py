"""The `forge` command: click wiring, shared options, and the one place every failure is turned into
a one-line reason and an exit code — 0 ok, 1 invalid (problems, failing tests, a refused publish),
2 usage or connection error. Never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from foundry.forge import __version__
from foundry.forge.commands import (
    deploy_documents,
    diff_documents,
    migrate_agent,
    run_manifest_tests,
    validate_documents,
)
from foundry.forge.errors import USAGE, ForgeError
from foundry.forge.output import Output, OutputGone, stdout_dropped
from foundry.forge.refs import NAME, fetch, parse_ref
from foundry.manifests import PROVIDERS

if TYPE_CHECKING:
    from foundry.forge.client import Client

URL_ENV, TOKEN_ENV = "FOUNDRY_URL", "FOUNDRY_TOKEN"


@dataclass(frozen=True)
class Settings:
    url: str | None
    token: str | None
    out: Output

    @property
    def online(self) -> bool:
        return bool(self.url)

    def credentials(self, why: str) -> tuple[str, str]:
        """(url, token), or the error naming the option or variable that is missing."""
        if not self.url:
            raise ForgeError("url_missing", f"{why} needs a server: --url or {URL_ENV}.")
        token = (self.token or "").strip()
        if not token:
            raise ForgeError("token_missing", f"{why} needs an API token: --token or {TOKEN_ENV}.")
        if not all("!" <= c <= "~" for c in token):  # it travels in an HTTP header
            raise ForgeError("token_invalid", f"The API token ({TOKEN_ENV} or --token) is printable ASCII, no spaces.")
        return self.url, token

    def client(self, why: str) -> Client:
        url, token = self.credentials(why)
        from foundry.forge.client import Client  # httpx is loaded only by commands that go online

        return Client(url, token)


def _server_options(command):
    """--url and --token (defaults: FOUNDRY_URL, FOUNDRY_TOKEN)."""
    command = click.option("--token", metavar="TOKEN", help=f"API token of the tenant [env: {TOKEN_ENV}].")(command)
    return click.option("--url", metavar="URL", help=f"Tenant URL, e.g. https://acme.example [env: {URL_ENV}].")(
        command
    )


def _shared(command):
    """--url, --token and --json, accepted before the command name (`forge --json validate`) or after."""
    command = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")(command)
    return _server_options(command)


def _settings(ctx: click.Context, url: str | None, token: str | None, as_json: bool) -> Settings:
    outer = ctx.find_root().params
    url = _given("--url", url, outer.get("url")) or os.environ.get(URL_ENV) or None
    token = _given("--token", token, outer.get("token")) or os.environ.get(TOKEN_ENV) or None
    return Settings(url, token, Output(as_json or bool(outer.get("as_json"))))


def _given(option: str, value: str | None, outer: str | None) -> str | None:
    """The option's value, after the command name or before it. Given empty (an unset variable:
    `--url "$STAGING_URL"`), refused: it must not fall back to FOUNDRY_URL / FOUNDRY_TOKEN, whose
    server (or token, sent to the server given) is another's."""
    for given in (value, outer):
        if given is not None and not given.strip():
            raise click.BadParameter(
                "Empty (an unset variable?): give a value, or leave the option out.", param_hint=f"'{option}'"
            )
    return value or outer


class _Command(click.Command):
    """A command whose usage errors all know their command: click's parser raises "Option '--url'
    requires an argument." without it, and the error then came without the usage line and the
    --help hint that every other usage error prints."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.ctx = exc.ctx or ctx
            raise


class _Group(_Command, click.Group):
    command_class = _Command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="forge")
@_shared
@click.pass_context
def forge(ctx, url, token, as_json) -> None:
    """Validate, diff, test, deploy and pull Agent Foundry domains (DIS) and agent manifests;
    bridge MCP clients to a tenant (`forge mcp`)."""
    if as_json and ctx.invoked_subcommand == "mcp":
        raise click.UsageError("forge mcp takes no --json: its stdout is the MCP protocol.")


@forge.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@_shared
@click.pass_context
def validate(ctx, paths, url, token, as_json) -> int:
    """Validate YAML files, or every *.yaml/*.yml under folders.

    Offline: agents are checked against the domain files given alongside them. With --url (the
    token may come from FOUNDRY_TOKEN) each file is validated by the server instead, against the
    tenant's published domains. FOUNDRY_URL alone does not make it go online: a domain and the agent
    pinning its next version validate offline before they are deployed together.
    """
    settings = _settings(ctx, url, token, as_json)
    explicit = url or ctx.find_root().params.get("url")
    client = settings.client("Validating against a server") if explicit else None
    return validate_documents(list(paths), settings.out, client)


@forge.command()
@click.argument("old", metavar="A")
@click.argument("new", metavar="B")
@_shared
@click.pass_context
def diff(ctx, old, new, url, token, as_json) -> int:
    """Show what changed from A to B: structural changes, then the unified diff.

    A and B are files or published versions, [domain:|agent:]NAME@VERSION (VERSION may be `latest`),
    which need --url and --token.
    """
    settings = _settings(ctx, url, token, as_json)
    return diff_documents(old, new, settings.out, lambda: settings.client("Comparing published versions"))


@forge.command("test")
@click.argument("manifest", metavar="MANIFEST")
@click.option("--domain", "domain_files", multiple=True, metavar="FILE", help="Domain file(s) to find the pin in.")
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    default="scripted",
    show_default=True,
    help="Model provider for the run (a real one needs its credentials).",
)
@click.option("--test", "names", multiple=True, metavar="NAME", help="Run only this test (repeatable).")
@_shared
@click.pass_context
def test_command(ctx, manifest, domain_files, provider, names, url, token, as_json) -> int:
    """Run an agent manifest's sandbox tests locally, through the agent runtime.

    The pinned domain is taken from --domain files, else ../domains/NAME.yaml next to the manifest's
    folder, else from the server (--url and --token), which is the only way its version is checked.
    """
    settings = _settings(ctx, url, token, as_json)
    server = (lambda: settings.client("Fetching the pinned domain")) if settings.online else None
    return run_manifest_tests(manifest, list(domain_files), provider, list(names), settings.out, server)


@forge.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("-m", "--message", help="Version message for every document published.")
@_shared
@click.pass_context
def deploy(ctx, paths, message, url, token, as_json) -> int:
    """Publish domains, then agents, and deploy each agent's published version.

    Everything is validated locally first; nothing is sent if a file has problems.
    """
    settings = _settings(ctx, url, token, as_json)
    try:
        (message or "").encode("utf-8")
    except UnicodeEncodeError:  # a byte of another encoding (`-m "$(git log -1 --format=%s)"`, Latin-1)
        raise click.BadParameter(
            "Not UTF-8 text: give the message in UTF-8.", param_hint="'-m' / '--message'"
        ) from None
    client = settings.client("Deploying")
    return deploy_documents(list(paths), message, settings.out, client)


@forge.command()
@click.argument("name", metavar="AGENT")
@click.option("--domain-version", type=click.IntRange(1, 2**31 - 1), help="Default: the domain's latest version.")
@_shared
@click.pass_context
def migrate(ctx, name, domain_version, url, token, as_json) -> int:
    """Re-pin a deployed agent to a newer version of its domain and redeploy it.

    Nothing changes if the manifest is not valid against that version: its problems are listed.
    """
    settings = _settings(ctx, url, token, as_json)
    if not NAME.match(name):  # it goes into the request's path: no `/`, no `..`
        raise click.BadParameter(
            f"{name!r} is not an agent name: a lowercase letter, then letters, digits and -, at most 63.",
            param_hint="AGENT",
        )
    with settings.client("Migrating") as client:
        return migrate_agent(name, domain_version, settings.out, client)


@forge.command()
@click.argument("ref", metavar="[domain:|agent:]NAME@VERSION")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the YAML here (default: stdout).")
@_shared
@click.pass_context
def pull(ctx, ref, output, url, token, as_json) -> int:
    """Fetch the YAML source of a published version, byte for byte."""
    settings = _settings(ctx, url, token, as_json)
    parsed = parse_ref(ref)
    if parsed is None:
        raise click.BadParameter(f"{ref!r}: write NAME@VERSION, e.g. invoice-triage@3 or domain:finance@latest.")
    if output is not None and not output.strip():  # `-o "$OUT"`, OUT unset: not stdout, which it would look like
        raise click.BadParameter("An empty name is no file.", param_hint="'-o' / '--output'")
    with settings.client("Pulling") as client:
        version = fetch(client, parsed)
    label = f"{version['kind']} {version['name']} v{version['number']}"
    try:
        source = version["source"].encode()
    except (AttributeError, UnicodeEncodeError):  # not text, or lone surrogates no file can hold
        raise ForgeError("unexpected_response", f"The server's source of {label} is not UTF-8 text.") from None
    if output is not None:
        try:
            _write_whole(Path(output), source)
        except OSError as exc:
            raise ForgeError("file_unwritable", f"Cannot write {output}: {exc.strerror or exc}.") from None
        settings.out.say(f"wrote {label} to {output}")
    elif not settings.out.json:
        try:
            sys.stdout.buffer.write(source)
            sys.stdout.flush()
        except BrokenPipeError as exc:
            raise OutputGone() from exc
    body = {key: version.get(key) for key in ("kind", "name", "number", "digest", "message", "created_at")}
    settings.out.document({**body, "file": output} if output is not None else {**body, "source": version["source"]})
    return 0


@forge.command("mcp")
@_server_options
@click.option("-v", "--verbose", is_flag=True, help="Log each request relayed, and the HTTP exchanges, to stderr.")
@click.pass_context
def mcp_command(ctx, url, token, verbose) -> int:
    """Serve MCP on stdin/stdout, relaying every message to the tenant's MCP endpoint.

    For MCP clients that start local servers (Claude Desktop, Cursor): their config runs
    `forge mcp --url https://acme.example/mcp` with FOUNDRY_TOKEN in its environment. The URL is
    the endpoint or the tenant URL (/mcp is added). Stdout carries only the protocol; a refused
    token or an unreachable server is said on stderr, exit 2. See docs/mcp.md.
    """
    settings = _settings(ctx, url, token, as_json=False)
    url, token = settings.credentials("Bridging MCP")
    from foundry.forge.mcp_bridge import bridge_run  # the MCP SDK is loaded only by this command

    return bridge_run(url, token, verbose=verbose)


def _command_of(args: list[str]) -> str | None:
    """The command `args` name (None: none), past the options given before it."""
    values = iter(args)
    for arg in values:
        if arg in ("--url", "--token"):
            next(values, None)  # the option's value
        elif not arg.startswith("-"):
            return arg
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    # `forge mcp`'s stdout is the protocol: its refusals go to stderr, as lines, whatever it is given.
    out = Output("--json" in args and _command_of(args) != "mcp")
    try:
        result = forge.main(args=args, prog_name="forge", standalone_mode=False)
    except ForgeError as exc:
        out.error(exc)
        return exc.exit_code
    except click.ClickException as exc:
        if out.json:
            out.error(ForgeError("usage", exc.format_message()))
        else:
            exc.show()
        return USAGE
    except (click.Abort, KeyboardInterrupt):
        click.echo("forge: interrupted", err=True)
        return 130
    except (BrokenPipeError, OutputGone):
        # The reader went away (`forge pull x | head`): nothing left to say, and no error at exit.
        stdout_dropped()
        return USAGE
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        out.error(ForgeError("internal_error", f"Unexpected {type(exc).__name__}: {exc}"))
        return USAGE
    return result if isinstance(result, int) else 0


def _write_whole(path: Path, data: bytes) -> None:
    """`data` as the file at `path`, whole or not at all: written beside it and renamed over it, so
    a write that fails part way (a full disk, a quota) leaves the earlier file as it was. Through a
    symbolic link, the file it points to; a device or a pipe (`-o /dev/stdout`) is written as is."""
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        target.write_bytes(data)
        return
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".forge")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

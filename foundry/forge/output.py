"""Where forge writes: results on stdout (lines for people, or one JSON document), the rest on stderr."""

import json
import os
import sys

import click

from foundry.forge.errors import ForgeError
from foundry.manifests.problems import one_line


def stdout_dropped() -> None:
    """Point stdout at /dev/null: its reader went away or it cannot be written, and what is left
    unflushed in it would fail again at exit (Python's "Exception ignored ... BrokenPipeError")."""
    if sys.stdout is not None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def shown(text: str, *, lines: bool = False) -> str:
    """`text` as forge writes it to a terminal: control and text-direction characters escaped
    (`one_line`), whatever a document or a server's answer put in a name or a message — no escape
    sequence reaches the terminal, and no name starts a line of its own. With `lines`, text that
    is several lines (a diff, a test's failures) keeps its line breaks, each line escaped."""
    if lines:
        return "\n".join(one_line(line) for line in text.split("\n"))
    return one_line(text)


class OutputGone(Exception):
    """stdout's reader went away (`forge ... | head`): nothing is left to say. Not an OSError, so
    click, which ends a command whose pipe broke with exit status 1 (forge's "invalid"), lets it
    through to cli.main, which ends quietly with its own status for it."""


def _echo(text: str, *, err: bool = False) -> None:
    try:
        click.echo(text, err=err)
        stream = sys.stderr if err else sys.stdout
        if stream is not None:  # None: started with it closed (`>&-`), click writes nothing
            stream.flush()
    except BrokenPipeError as exc:
        raise OutputGone() from exc


class Output:
    def __init__(self, as_json: bool = False):
        self.json = as_json
        self.notes: list[str] = []  # under --json, the document's `notes`

    def say(self, text: str = "", *, lines: bool = False) -> None:
        """A line of the human result (stdout, at once: it is also the progress of long commands)."""
        if not self.json:
            _echo(shown(text, lines=lines))

    def step(self, text: str, *, lines: bool = False) -> None:
        """Progress of a long command: with the result on stdout, or on stderr under --json."""
        if self.json:
            _echo(shown(text, lines=lines), err=True)
        else:
            self.say(text, lines=lines)

    def note(self, text: str) -> None:
        """Something the reader should know that is not a failure (stderr; in the document under --json)."""
        if self.json:
            self.notes.append(text)
        else:
            click.echo(f"note: {shown(text)}", err=True)

    def document(self, data: dict) -> None:
        # ASCII JSON: a file name that is no UTF-8 (kept by Python as lone surrogates) is escaped,
        # never written out as the raw byte that would make the document unreadable.
        if self.json:
            if self.notes and "notes" not in data:
                data = {**data, "notes": self.notes}
            _echo(json.dumps(data, indent=2, ensure_ascii=True, default=str))

    def problems(self, problems) -> None:
        for problem in problems:
            self.say(str(problem))

    def error(self, error: ForgeError) -> None:
        click.echo(shown(f"forge: error: {error.message}"), err=True)  # a server's words may name anything
        if self.json:
            document = error.document or error.as_dict()
            try:
                click.echo(json.dumps(document, indent=2, ensure_ascii=True, default=str))
            except OSError:  # stdout's reader went away, or a full disk: the line above said it
                stdout_dropped()

"""A model's name as a spreadsheet or a terminal reads the usage statement. The name is the
manifest's text (`spec.model.name`): a line break in it let a formula past the CSV's guard (read
with `;`, as Excel does in many locales, a quoted cell's line break ends the row and the next line
starts a cell), and an operator's `usage_statement` wrote its escape sequences to the terminal.
Manifests now refuse control and direction characters in the name; rows written before still
reach the statement, and are guarded where they leave (the CSV's cells: tests/billing/test_statements.py)."""

import os
import pty
import tty
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from foundry.manifests.validation import validate
from tests.billing.test_rollups import ledger_add

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agents" / "invoice-triage.yaml"
NAMES = ["gpt\n=cmd|' /C calc'!A0\nx", "gpt\r\n@SUM(1+1)\r\nx", "gpt;\"\n-2+3+cmd|' /C calc'!A0"]


@pytest.mark.parametrize("escaped", ["gpt\\n=cmd", "m1\\e]0;owned\\a", "a\\u202eb", "gpt\\x85"])
def test_a_manifest_refuses_a_model_name_with_control_or_direction_characters(escaped):
    source = EXAMPLE.read_text().replace("name: scripted-1", f'name: "{escaped}"')
    problems = validate(source, "agent.yaml").problems
    assert [(p.code, p.line) for p in problems] == [("schema_pattern", 16)]
    assert "one line of text without control or direction characters" in problems[0].message


@pytest.mark.parametrize("name", ["llama3.1:8b-instruct-q4_0", "meta-llama/Llama-3.1-8B-Instruct", "gpt-4.1"])
def test_model_names_of_real_providers_are_accepted(name):
    source = EXAMPLE.read_text().replace("name: scripted-1", f'name: "{name}"')
    assert validate(source, "agent.yaml").problems == []


def test_the_operators_statement_command_escapes_a_workspaces_control_characters_on_a_terminal(acme, tmp_path):
    """On a terminal, no C0/C1 control character but the CSV's own line ends reaches it raw; to a
    file (`--output`), the statement is written as the ledger holds it."""
    name = "m1\x1b]0;owned\x07\x1b[2K\rp,alpha,openai,m1\x9b"
    ledger_add(acme, model=name, when=datetime(2026, 1, 5, tzinfo=UTC))
    controller, terminal = pty.openpty()
    tty.setraw(terminal)  # as written: no \n made \r\n on the way
    with os.fdopen(terminal, "w", encoding="utf-8") as out:
        call_command("usage_statement", "--tenant", "acme", "--month", "2026-01", stdout=out)
    os.set_blocking(controller, False)
    shown = os.read(controller, 65536).decode()
    os.close(controller)
    raw = {hex(ord(c)) for c in shown.replace("\r\n", "").replace("\n", "") if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F}
    assert raw == set() and "\\u001b]0;owned\\u0007" in shown
    call_command("usage_statement", "--tenant", "acme", "--month", "2026-01", "--output", str(tmp_path / "s.csv"))
    assert name.encode() in (tmp_path / "s.csv").read_bytes()

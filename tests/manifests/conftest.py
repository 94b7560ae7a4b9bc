"""The example documents and a compact view of problems, shared by the manifest tests (no database)."""

from pathlib import Path

from foundry.manifests import Resolution, Validated, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FINANCE = (EXAMPLES / "domains" / "finance.yaml").read_text()
TRIAGE = (EXAMPLES / "agents" / "invoice-triage.yaml").read_text()
FINANCE_DATA = validate(FINANCE).data


def found(result: Validated) -> list[tuple[str, int, int]]:
    """(code, line, column) of each problem, in the order reported."""
    return [(p.code, p.line, p.column) for p in result.problems]


def found_one(result: Validated) -> tuple[str, int, int]:
    """(code, line, column) of the one problem reported."""
    assert len(result.problems) == 1, result.problems
    return found(result)[0]


def codes(source: str | bytes, **kwargs) -> list[tuple[str, int, int]]:
    return found(validate(source, **kwargs))


def finance_resolver(name: str, version: int) -> Resolution:
    """The finance domain at version 1 only, as the server's resolver answers."""
    if name != "finance":
        return Resolution(code="dis_not_found", message=f"No domain named {name!r}.")
    if version != 1:
        return Resolution(code="dis_version_not_found", message=f"finance has no version {version}.", field="version")
    return Resolution(data=FINANCE_DATA)


def edit(source: str, old: str, new: str) -> str:
    """`source` with the one occurrence of `old` replaced (fails loudly if the example changed)."""
    assert source.count(old) == 1, f"{old!r} occurs {source.count(old)} times"
    return source.replace(old, new)

"""What validation reports: problems with a stable code, a message and where they are."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document. `line`/`column` are 1-based; `path` is a JSON pointer."""

    code: str
    message: str
    file: str = "<input>"
    line: int = 1
    column: int = 1
    path: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.code}: {self.message}"


class DocumentError(Exception):
    """Raised by the loader when a document cannot be read at all (the problems say why)."""

    def __init__(self, problems: list[Problem]):
        super().__init__(str(problems[0]) if problems else "invalid document")
        self.problems = problems


def pointer(path: tuple) -> str:
    """A JSON pointer (RFC 6901) for a key path."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)

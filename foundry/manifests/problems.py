"""What validation reports: problems with a stable code, a message and where they are."""

import re
from dataclasses import asdict, dataclass

from foundry.text import DIRECTION

# What may not reach a terminal raw from a document: C0/C1 controls (CR, LF, ESC...), DEL, the
# Unicode line and paragraph separators, and the bidirectional embeddings, overrides, isolates and
# marks (a U+202E makes the rest of the line read reversed: foundry/text.py). A problem is one line.
_UNPRINTABLE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{DIRECTION}]")


def one_line(text: str) -> str:
    """`text` with every control character written as its Python escape (\\n, \\x1b): what a
    document names (an entity, a field) cannot start a line of its own or move the cursor."""
    return _UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


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
        return one_line(f"{self.file}:{self.line}:{self.column}: {self.code}: {self.message}")


class DocumentError(Exception):
    """Raised by the loader when a document cannot be read at all (the problems say why)."""

    def __init__(self, problems: list[Problem]):
        super().__init__(str(problems[0]) if problems else "invalid document")
        self.problems = problems


def pointer(path: tuple) -> str:
    """A JSON pointer (RFC 6901) for a key path."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)
